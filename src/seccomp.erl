%% @doc seccomp for the BEAM: the public Erlang API.
%%
%% A process carries layers of policy. Every call made through a mediated
%% entry point ({@link apply/3}, the spawn family, the sandbox, rpc) must be
%% allowed by every layer. Layers are added, never removed, and children
%% spawned through these functions inherit them.
-module(seccomp).

-export([policy/1, restrict/1, restrict/2, check/1, check/2, apply/3,
         spawn/1, spawn/3, spawn_link/1, spawn_link/3, spawn_monitor/1, spawn_monitor/3,
         spawn_opt/2, spawn_opt/4, status/1, table_size/0, is_restricted/1,
         subscribe/0, unsubscribe/0, trap_reply/2, child_spec/2, start_child/2, ps/0,
         inherit_everywhere/1, rpc_call/4, rpc_call/5, rpc_cast/4, erpc_call/4, erpc_call/5, spawn/2, spawn/4,
         policy_to_file/2, policy_from_file/1, policy_to_json/1, policy_from_json/1,
         capabilities/1]).

-export_type([policy/0, verdict/0, status/0]).

-type policy() :: seccomp_policy:t().
-type verdict() :: allow | {deny, seccomp_policy:action()}.
-type status() :: #{mode := disabled | filter, layers := [seccomp_policy:spec()],
                    no_spawn := boolean(), inherit := boolean(),
                    checks := non_neg_integer(), denials := non_neg_integer(),
                    tracer := seccomp_process:tracer()}.

%% @doc Validate and compile a policy.
%%
%% Keys: `mode' (`whitelist', the default, or `blacklist'), `rules' (a list of
%% `Module', `{M, F, Arity}' with `'_'' for F or Arity, or
%% `#{match => Pattern, action => Action}'), `no_spawn' (default false),
%% `inherit' (default true) and `default_action' (`error', the default,
%% `kill', `log' or `{trap, Broker}').
-spec policy(map()) -> {ok, policy()} | {error, {invalid_policy, term()}}.
policy(Map) -> seccomp_policy:new(Map).

%% @doc Add a layer to the calling process. There is no way back.
-spec restrict(policy() | map()) -> ok | {error, {invalid_policy, term()}}.
restrict(Policy) ->
    with_policy(Policy, fun(P) -> seccomp_process:restrict_self(seccomp_policy:native(P)) end).

%% @doc Add a layer to another local process. Only an unrestricted caller may.
-spec restrict(pid(), policy() | map()) ->
          ok | {error, not_permitted | noproc | {invalid_policy, term()} | {badarg, term()}}.
restrict(Pid, Policy) when is_pid(Pid), node(Pid) =:= node() ->
    with_policy(Policy, fun(P) -> seccomp_process:restrict(Pid, seccomp_policy:native(P)) end);
restrict(Pid, _Policy) ->
    {error, {badarg, Pid}}.

with_policy(Policy, Fun) ->
    case seccomp_policy:new(Policy) of
        {ok, P} -> Fun(P);
        {error, _} = E -> E
    end.

%% @doc What the calling process's layers say about a call.
-spec check(mfa()) -> verdict().
check({M, F, A}) when is_atom(M), is_atom(F), is_integer(A), A >= 0, A =< 255 ->
    seccomp_nif:check(M, F, A);
check(Other) ->
    erlang:error({badarg, Other}).

%% @doc What `Pid''s layers say about a call.
-spec check(pid(), mfa()) -> verdict().
check(Pid, {M, F, A}) when is_pid(Pid), node(Pid) =:= node(), is_atom(M), is_atom(F),
                           is_integer(A), A >= 0, A =< 255 ->
    seccomp_nif:check_pid(Pid, M, F, A);
check(Pid, MFA) ->
    erlang:error({badarg, {Pid, MFA}}).

%% @doc Apply `M:F(Args...)' if the caller's policy allows it.
%%
%% A violation with action `error' raises `error:{seccomp_violation, {M, F, Arity}}';
%% `kill' kills the caller; `log' records and proceeds; `{trap, Broker}' asks the broker.
%%
%% Whatever the function, a process it starts in the caller carries the
%% caller's inheritable layers before it runs (see {@link status/1}'s
%% `tracer'), funs among the arguments are checked like the calls they make,
%% and a call that would have another process act for the caller (a
%% supervisor, a timer, another node) carries the layers there or is refused.
-spec apply(module(), atom(), [term()]) -> term().
apply(M, F, Args) -> seccomp_route:apply(M, F, Args).

%%% Spawning ----------------------------------------------------------------

%% @doc `erlang:spawn/1' that honours `no_spawn' and passes the caller's layers on.
-spec spawn(fun(() -> term())) -> pid().
spawn(Fun) when is_function(Fun, 0) -> erlang:spawn(inheriting(Fun, {erlang, spawn, 1}));
spawn(Fun) -> erlang:error({badarg, Fun}).

%% @doc `erlang:spawn/3', checked like a call of `M:F/length(Args)' and a spawn.
-spec spawn(module(), atom(), [term()]) -> pid().
spawn(M, F, Args) -> erlang:spawn(inheriting(M, F, Args, {erlang, spawn, 3})).

-spec spawn_link(fun(() -> term())) -> pid().
spawn_link(Fun) when is_function(Fun, 0) -> erlang:spawn_link(inheriting(Fun, {erlang, spawn_link, 1}));
spawn_link(Fun) -> erlang:error({badarg, Fun}).

-spec spawn_link(module(), atom(), [term()]) -> pid().
spawn_link(M, F, Args) -> erlang:spawn_link(inheriting(M, F, Args, {erlang, spawn_link, 3})).

-spec spawn_monitor(fun(() -> term())) -> {pid(), reference()}.
spawn_monitor(Fun) when is_function(Fun, 0) ->
    erlang:spawn_monitor(inheriting(Fun, {erlang, spawn_monitor, 1}));
spawn_monitor(Fun) -> erlang:error({badarg, Fun}).

-spec spawn_monitor(module(), atom(), [term()]) -> {pid(), reference()}.
spawn_monitor(M, F, Args) -> erlang:spawn_monitor(inheriting(M, F, Args, {erlang, spawn_monitor, 3})).

-spec spawn_opt(fun(() -> term()), [term()]) -> pid() | {pid(), reference()}.
spawn_opt(Fun, Opts) when is_function(Fun, 0), is_list(Opts) ->
    erlang:spawn_opt(inheriting(Fun, {erlang, spawn_opt, 2}), Opts);
spawn_opt(Fun, Opts) -> erlang:error({badarg, {Fun, Opts}}).

-spec spawn_opt(module(), atom(), [term()], [term()]) -> pid() | {pid(), reference()}.
spawn_opt(M, F, Args, Opts) when is_list(Opts) ->
    erlang:spawn_opt(inheriting(M, F, Args, {erlang, spawn_opt, 4}), Opts);
spawn_opt(M, F, Args, Opts) -> erlang:error({badarg, {M, F, Args, Opts}}).

%% The child's entry function: it takes on the inherited layers, then runs Fun.
inheriting(Fun, SpawnMFA) ->
    with_ticket(seccomp_violation:spawn_ticket(SpawnMFA), Fun).

inheriting(M, F, Args, SpawnMFA) when is_atom(M), is_atom(F), is_list(Args) ->
    Arity = length(Args),
    Call = fun() -> erlang:apply(M, F, Args) end,
    case seccomp_nif:check(M, F, Arity) of
        allow -> inheriting(Call, SpawnMFA);
        {deny, Action} ->
            seccomp_violation:handle(Action, {M, F, Arity}, fun() -> inheriting(Call, SpawnMFA) end)
    end;
inheriting(M, F, Args, _SpawnMFA) ->
    erlang:error({badarg, {M, F, Args}}).

with_ticket(none, Fun) -> Fun;
with_ticket(Ticket, Fun) -> fun() -> ok = seccomp_process:adopt(Ticket), Fun() end.

%% @doc Every process that `Pid' (and, in turn, its children) spawns
%% carries `Pid''s inheritable layers, even when compiled code (`Task',
%% `gen_server:start', `proc_lib', a dependency) spawns it: a tracer module
%% on the process gives the child the layers while the parent spawns it,
%% before the child runs. Every restricted process has it from the moment it
%% is restricted; this turns it on again (after `dbg' cleared it, say). A
%% process has one tracer: `{error, {tracer_in_use, Tracer}}' when another
%% holds it. Only an unrestricted caller may enable it for another process.
-spec inherit_everywhere(pid()) ->
          ok | {error, not_permitted | noproc | {tracer_in_use, term()} | {badarg, term()}}.
inherit_everywhere(Pid) when is_pid(Pid), node(Pid) =:= node() ->
    case Pid =:= self() orelse not is_restricted(self()) of
        false -> {error, not_permitted};
        true -> seccomp_process:trace(Pid)
    end;
inherit_everywhere(Other) ->
    {error, {badarg, Other}}.

%%% Observing ----------------------------------------------------------------

%% @doc The restriction state of a local process, like the `Seccomp:' line of
%% `/proc/PID/status'.
%% `tracer' is `on' while children inherit by construction, `off' when the
%% trace flags were cleared (`dbg' does it) and `{other, Tracer}' when another
%% tracer holds the process: checked calls of a restricted process turn it
%% back on, or are refused while another tracer holds it.
-spec status(pid()) -> status() | {error, noproc | {badarg, term()}}.
status(Pid) when is_pid(Pid), node(Pid) =:= node() -> seccomp_process:status(Pid);
status(Other) -> {error, {badarg, Other}}.

%% @doc Whether a local process carries at least one layer.
-spec is_restricted(pid()) -> boolean().
is_restricted(Pid) when is_pid(Pid), node(Pid) =:= node() -> seccomp_process:is_restricted(Pid);
is_restricted(Other) -> erlang:error({badarg, Other}).

%% @doc How many processes the table holds.
-spec table_size() -> non_neg_integer().
table_size() -> seccomp_nif:table_size().

%% @doc Receive `{seccomp_event, Event}' for every violation on this node
%% (only an unrestricted process may).
-spec subscribe() -> ok | {error, not_started | not_permitted}.
subscribe() -> seccomp_events:subscribe(self()).

-spec unsubscribe() -> ok | {error, not_started}.
unsubscribe() -> seccomp_events:unsubscribe(self()).

%% @doc Answer a `{seccomp_trap, Ref, Pid, MFA}' question as a broker.
-spec trap_reply(reference(), allow | deny) -> ok.
trap_reply(Ref, Answer) when is_reference(Ref), (Answer =:= allow orelse Answer =:= deny) ->
    Ref ! {seccomp_trap_reply, Ref, Answer},
    ok.

%%% Remote calls ------------------------------------------------------------------

%% @doc `rpc:call/4' that checks the caller's policy and runs under it on `Node'.
%% Returns `{badrpc, Reason}' like `rpc:call/4' on failure.
-spec rpc_call(node(), module(), atom(), [term()]) -> term().
rpc_call(Node, M, F, A) -> rpc_call(Node, M, F, A, infinity).

-spec rpc_call(node(), module(), atom(), [term()], timeout()) -> term().
rpc_call(Node, M, F, A, Timeout) -> seccomp_rpc:rpc_call(Node, M, F, A, Timeout).

%% @doc `rpc:cast/4' that checks the caller's policy and runs under it on `Node'.
-spec rpc_cast(node(), module(), atom(), [term()]) -> true.
rpc_cast(Node, M, F, A) -> ok = seccomp_rpc:cast(Node, M, F, A), true.

%% @doc `erpc:call/4' that checks the caller's policy and runs under it on `Node'.
-spec erpc_call(node(), module(), atom(), [term()]) -> term().
erpc_call(Node, M, F, A) -> seccomp_rpc:call(Node, M, F, A, infinity).

-spec erpc_call(node(), module(), atom(), [term()], timeout()) -> term().
erpc_call(Node, M, F, A, Timeout) -> seccomp_rpc:call(Node, M, F, A, Timeout).

%% @doc `erlang:spawn/2' on another node, the child restricted by the caller's layers.
-spec spawn(node(), fun(() -> term())) -> pid().
spawn(Node, Fun) when is_function(Fun, 0) -> seccomp_rpc:spawn(Node, erlang, apply, [Fun, []]);
spawn(Node, Fun) -> erlang:error({badarg, {Node, Fun}}).

%% @doc `erlang:spawn/4', the child restricted by the caller's layers.
-spec spawn(node(), module(), atom(), [term()]) -> pid().
spawn(Node, M, F, A) -> seccomp_rpc:spawn(Node, M, F, A).

%%% Supervision trees -------------------------------------------------------------

%% @doc A child spec whose child starts, and restarts, restricted by `Policy'
%% (a policy, a policy map, `{app_env, App, Key}' or `{file, Path}').
-spec child_spec(supervisor:child_spec(), seccomp_supervisor:policy_source()) -> supervisor:child_spec().
child_spec(Spec, Policy) -> seccomp_supervisor:child_spec(Spec, Policy).

%% @doc `supervisor:start_child/2' that gives the child at least the caller's layers.
-spec start_child(seccomp_supervisor:sup_ref(), supervisor:child_spec() | [term()]) -> term().
start_child(Sup, Spec) -> seccomp_supervisor:start_child(Sup, Spec).

%% @doc Every local process with its restriction state.
-spec ps() -> [map()].
ps() -> seccomp_supervisor:ps().

%%% Files ---------------------------------------------------------------------

%% @doc Write a policy as JSON (`*.json') or Erlang terms (any other name).
-spec policy_to_file(policy(), file:name_all()) -> ok | {error, term()}.
policy_to_file(Policy, Path) -> seccomp_policy:to_file(Policy, Path).

-spec policy_from_file(file:name_all()) -> {ok, policy()} | {error, term()}.
policy_from_file(Path) -> seccomp_policy:from_file(Path).

-spec policy_to_json(policy()) -> {ok, binary()} | {error, term()}.
policy_to_json(Policy) -> seccomp_policy:to_json(Policy).

-spec policy_from_json(iodata()) -> {ok, policy()} | {error, term()}.
policy_from_json(Json) -> seccomp_policy:from_json(Json).

%%% What a policy leaves open ------------------------------------------------------

%% @doc Which escape-capable classes a policy grants: for each class the
%% functions of it that the policy (and the guard) allow, `[]' when it is
%% closed. See `seccomp_capabilities'.
-spec capabilities(policy() | map()) ->
          {ok, #{seccomp_capabilities:class() => [mfa()]}} | {error, {invalid_policy, term()}}.
capabilities(Policy) ->
    with_policy(Policy, fun(P) -> {ok, seccomp_capabilities:granted(P)} end).
