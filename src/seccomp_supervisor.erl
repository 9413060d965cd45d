%% @doc Restrictions in OTP supervision trees.
%%
%% A restricted child spec starts its child through {@link start_restricted/2},
%% which runs in the supervisor: it arms the supervisor (see
%% `seccomp_nif:arm/1') and turns the inheriting tracer on for the start, so
%% every process the start function spawns, the child included, carries the
%% policy before it runs its first instruction (`init/1' of a behaviour as
%% much as a `Task' fun). Every start and every restart, of static,
%% dynamic and `simple_one_for_one' children alike.
%%
%% Restricted callers: {@link start_child/2} (and every routed start, see
%% `-seccomp_routes' below) passes the caller's layers to the child the same
%% way; a start that cannot carry them (a `simple_one_for_one' template
%% that is not restricted, a restart of a child spec that is not) is refused.
-module(seccomp_supervisor).

-seccomp_routes([{supervisor, start_child, 2}, {supervisor, restart_child, 2},
                 {'Elixir.Supervisor', start_child, 2}, {'Elixir.Supervisor', restart_child, 2},
                 {'Elixir.DynamicSupervisor', start_child, 2},
                 {'Elixir.Task.Supervisor', '_', '_'}]).

-export([child_spec/2, start_restricted/2, start_restricted/3, start_restricted/4,
         start_restricted/5, start_restricted/6, start_child/2, start_dynamic_child/2, task/3,
         task/4, route/3, ps/0, print_ps/0, print_capabilities/0, tree/1, started_pid/1]).

-export_type([policy_source/0, restriction/0, sup_ref/0]).

-type policy_source() :: seccomp_policy:t() | map() | {app_env, atom(), atom()}
                       | {file, file:name_all()}.
-type restriction() :: {policy, policy_source()} | {ticket, reference()}.
-type sup_ref() :: pid() | atom() | {atom(), node()} | {global, term()} | {via, module(), term()}.

%% The extra argument by which a restricted caller hands its layers to a
%% restricted `simple_one_for_one' template.
-define(TICKET_ARG(T), {'$seccomp_ticket', T}).
-define(MAX_REFERENCES, 8).

%% @doc A child spec whose child starts (and restarts) restricted by `Policy'.
%% `Policy' may name application env (`{app_env, App, Key}') or a file
%% (`{file, Path}'): it is read at every start, so operators can tighten it
%% without code changes. A literal policy is validated at once: an invalid one
%% raises `error:{invalid_policy, Why}' here, not when the child starts.
-spec child_spec(supervisor:child_spec(), policy_source()) -> supervisor:child_spec().
child_spec(Spec, {app_env, _, _} = Source) -> restrict_spec(Spec, {policy, Source});
child_spec(Spec, {file, _} = Source) -> restrict_spec(Spec, {policy, Source});
child_spec(Spec, Policy) ->
    case seccomp_policy:new(Policy) of
        {ok, P} -> restrict_spec(Spec, {policy, P});
        {error, {invalid_policy, Why}} -> erlang:error({invalid_policy, Why})
    end.

restrict_spec(#{start := Start} = Spec, Restriction) ->
    Spec#{start := wrap_start(Start, Restriction)};
restrict_spec({Id, Start, Restart, Shutdown, Type, Modules}, Restriction) ->
    {Id, wrap_start(Start, Restriction), Restart, Shutdown, Type, Modules};
restrict_spec(Other, _Restriction) ->
    erlang:error({badarg, Other}).

wrap_start({?MODULE, start_restricted, [Start, Restrictions]}, Restriction) ->
    {?MODULE, start_restricted, [Start, Restrictions ++ [Restriction]]};
wrap_start({M, F, A} = Start, Restriction) when is_atom(M), is_atom(F), is_list(A) ->
    {?MODULE, start_restricted, [Start, [Restriction]]};
wrap_start(Other, _Restriction) ->
    erlang:error({badarg, Other}).

%% @doc The start function of restricted children (do not call directly).
-spec start_restricted(mfa() | {module(), atom(), list()}, [restriction()]) -> term().
start_restricted(Start, Restrictions) -> start_with(Start, Restrictions, []).

%% Extra arguments appended by `simple_one_for_one' and dynamic supervisors.
-spec start_restricted({module(), atom(), list()}, [restriction()], term()) -> term().
start_restricted(Start, Restrictions, X1) -> start_with(Start, Restrictions, [X1]).
-spec start_restricted({module(), atom(), list()}, [restriction()], term(), term()) -> term().
start_restricted(Start, Restrictions, X1, X2) -> start_with(Start, Restrictions, [X1, X2]).
-spec start_restricted({module(), atom(), list()}, [restriction()], term(), term(), term()) -> term().
start_restricted(Start, Restrictions, X1, X2, X3) -> start_with(Start, Restrictions, [X1, X2, X3]).
-spec start_restricted({module(), atom(), list()}, [restriction()], term(), term(), term(), term()) ->
          term().
start_restricted(Start, Restrictions, X1, X2, X3, X4) ->
    start_with(Start, Restrictions, [X1, X2, X3, X4]).

start_with({M, F, A}, Restrictions, Extra0) ->
    {Extra, Handed} = lists:partition(fun(X) -> not is_ticket_arg(X) end, Extra0),
    case tickets(Restrictions, []) of
        {ok, Tickets} ->
            All = Tickets ++ [T || ?TICKET_ARG(T) <- Handed],
            armed(All, fun() -> erlang:apply(M, F, A ++ Extra) end);
        {error, _} = Error ->
            Error
    end.

is_ticket_arg(?TICKET_ARG(T)) -> is_reference(T);
is_ticket_arg(_) -> false.

tickets([], Acc) ->
    {ok, lists:reverse(Acc)};
tickets([{ticket, T} | Rest], Acc) ->
    tickets(Rest, [T | Acc]);
tickets([{policy, Source} | Rest], Acc) ->
    case resolve(Source) of
        {ok, P} -> tickets(Rest, [seccomp_nif:policy_ticket(seccomp_policy:native(P)) | Acc]);
        {error, Why} -> {error, {seccomp_policy, Why}}
    end.

%% Policy sources may refer to each other: at most ?MAX_REFERENCES steps,
%% so a cycle is an error, not a loop.
resolve(Source) -> resolve(Source, ?MAX_REFERENCES).

resolve({app_env, App, Key}, 0) ->
    {error, {policy_source_cycle, {app_env, App, Key}}};
resolve({app_env, App, Key}, Left) ->
    case application:get_env(App, Key) of
        {ok, Source} -> resolve(Source, Left - 1);
        undefined -> {error, {no_policy_in_app_env, App, Key}}
    end;
resolve({file, Path}, _Left) ->
    seccomp_policy:from_file(Path);
resolve(Policy, _Left) when is_list(Policy) ->
    %% The Elixir API's keyword form (`allow: [...]'), e.g. from config.exs.
    case code:ensure_loaded('Elixir.Seccomp.Policy') of
        {module, Mod} -> Mod:native(Policy);
        {error, _} -> seccomp_policy:new(Policy)
    end;
resolve(Policy, _Left) ->
    seccomp_policy:new(Policy).

%% Run a start with the supervisor armed: what it spawns meanwhile takes the
%% tickets' layers before it runs (the tracer callback), on top of any the
%% supervisor passes on itself.
armed(Tickets, Start) ->
    case seccomp_process:tracer(self()) of
        {other, T} ->
            {error, {seccomp, {tracer_in_use, T}}};
        Was ->
            [ok = seccomp_nif:arm(T) || T <- Tickets],
            ok = case Was of
                     on -> ok;
                     _ -> seccomp_process:trace(self())
                 end,
            Before = linked(),
            try
                restrict_started(Start(), Tickets, Before)
            after
                ok = seccomp_nif:disarm(),
                Was =:= on orelse erlang:trace(self(), false, [procs, set_on_spawn])
            end
    end.

linked() ->
    {links, Links} = process_info(self(), links),
    Links.

%% A start function may return a process it did not start (an existing
%% one, to have it restricted and then terminated as a child): only a
%% process this start spawned (this process is its parent, or the parent of
%% its parent..., and it was not linked here before) is handed out, and it
%% gets the layers now if the tracer could not give them.
restrict_started(Result, Tickets, Before) ->
    case started_pid(Result) of
        undefined -> Result;
        Pid ->
            case started_here(Pid, 8) andalso not lists:member(Pid, Before) of
                true -> ensure_restricted(Pid, Tickets, Result);
                false -> {error, {seccomp, not_started_here}}
            end
    end.

started_here(_Pid, 0) -> false;
started_here(Pid, Depth) when node(Pid) =:= node() ->
    case process_info(Pid, parent) of
        {parent, Parent} when Parent =:= self() -> true;
        {parent, Parent} when is_pid(Parent) -> started_here(Parent, Depth - 1);
        _ -> false
    end;
started_here(_Pid, _Depth) -> false.

%% @private The process a start function or a spawn returned, in any of the
%% usual shapes (`Pid', `{Pid, MonitorRef}', `{ok, Pid}', `{ok, Pid, Info}',
%% a `Task'), or `undefined'.
-spec started_pid(term()) -> pid() | undefined.
started_pid(Pid) when is_pid(Pid) -> Pid;
started_pid({Pid, Ref}) when is_pid(Pid), is_reference(Ref) -> Pid;
started_pid({ok, Pid}) when is_pid(Pid) -> Pid;
started_pid({ok, Pid, _Info}) when is_pid(Pid) -> Pid;
started_pid(#{pid := Pid}) when is_pid(Pid) -> Pid;
started_pid(_) -> undefined.

ensure_restricted(Pid, Tickets, Result) ->
    Outcomes = [case seccomp_process:is_restricted(Pid) of
                    true -> ok;
                    false -> seccomp_process:adopt_pid(Pid, T)
                end || T <- Tickets],
    case [E || {error, not_permitted} = E <- Outcomes] of
        [] ->
            Result;
        _ ->
            %% Fail closed: a child we could not restrict must not run.
            unlink(Pid),
            exit(Pid, kill),
            {error, {seccomp, not_permitted}}
    end.

%%% Restricted callers -------------------------------------------------------------

%% @private Enforcement point (see `seccomp_route').
-spec route(module(), atom(), [term()]) -> term().
route(supervisor, start_child, [Sup, Spec]) -> start_child(Sup, Spec);
route('Elixir.Supervisor', start_child, [Sup, Spec]) -> start_child(Sup, elixir_spec(Spec));
route('Elixir.DynamicSupervisor', start_child, [Sup, Spec]) ->
    start_dynamic_child(Sup, elixir_spec(Spec));
route(Mod, restart_child, [Sup, Id]) ->
    case seccomp_process:is_restricted(self()) andalso not restricted_spec(Sup, Id) of
        true -> seccomp_violation:refuse({Mod, restart_child, 2});
        false -> supervisor:restart_child(Sup, Id)
    end;
route('Elixir.Task.Supervisor', F, [Sup, Fun | Opts])
  when is_function(Fun, 0), (F =:= start_child orelse F =:= async orelse F =:= async_nolink) ->
    task(Sup, Fun, F, Opts);
route('Elixir.Task.Supervisor', F, [Sup, M, Fn, A | Opts])
  when is_atom(M), is_atom(Fn), is_list(A),
       (F =:= start_child orelse F =:= async orelse F =:= async_nolink) ->
    %% The task's call is itself checked, in the task.
    task(Sup, fun() -> seccomp_route:apply(M, Fn, A) end, F, Opts);
route(Mod, F, Args) ->
    %% Every other start (`async_stream'...) carries a fun or an MFA.
    case seccomp_process:is_restricted(self()) andalso seccomp_delegate:carries_code(Args) of
        true -> seccomp_violation:refuse({Mod, F, length(Args)});
        false -> erlang:apply(Mod, F, Args)
    end.

elixir_spec(Spec) when is_list(Spec) -> Spec;
elixir_spec(Spec) -> 'Elixir.Supervisor':child_spec(Spec, []).

restricted_spec(Sup, Id) ->
    case supervisor:get_childspec(Sup, Id) of
        {ok, #{start := {?MODULE, start_restricted, _}}} -> true;
        _ -> false
    end.

%% @doc `supervisor:start_child/2' for any caller: when the caller is
%% restricted, the child carries at least the caller's layers.
-spec start_child(sup_ref(), supervisor:child_spec() | [term()]) -> term().
start_child(Sup0, SpecOrArgs0) ->
    %% A restricted caller's spec is data: its start is checked as a call of
    %% the caller, and a system or library supervisor is out of reach.
    [Sup, SpecOrArgs] = seccomp_route:mediate([Sup0, SpecOrArgs0]),
    start_checked_child(Sup, SpecOrArgs).

start_checked_child(Sup, SpecOrArgs) when is_map(SpecOrArgs) ->
    case is_dynamic(Sup) of
        true -> start_dynamic_child(Sup, SpecOrArgs);
        false -> start_supervisor_child(Sup, SpecOrArgs)
    end;
start_checked_child(Sup, SpecOrArgs) ->
    start_supervisor_child(Sup, SpecOrArgs).

start_supervisor_child(Sup, SpecOrArgs) ->
    on_behalf(Sup, fun(Restriction) -> supervisor:start_child(Sup, with_restriction(SpecOrArgs, Restriction)) end,
              SpecOrArgs, {supervisor, start_child, 2}).

%% @doc `DynamicSupervisor.start_child/2' for a child spec map, like {@link start_child/2}.
-spec start_dynamic_child(pid() | atom(), map()) -> term().
start_dynamic_child(Sup0, Spec0) ->
    [Sup, Spec] = seccomp_route:mediate([Sup0, Spec0]),
    on_behalf(Sup, fun(Restriction) ->
                           'Elixir.DynamicSupervisor':start_child(Sup, with_restriction(Spec, Restriction))
                   end, Spec, {'Elixir.DynamicSupervisor', start_child, 2}).

%% @doc `Task.Supervisor' `start_child', `async' or `async_nolink' with the
%% caller's layers on the task before it runs.
-spec task(pid() | atom(), fun(() -> term()), start_child | async | async_nolink) -> term().
task(Sup, Fun, Kind) -> task(Sup, Fun, Kind, []).

%% @doc Like {@link task/3}, with the options of the `/3' forms.
-spec task(pid() | atom(), fun(() -> term()), start_child | async | async_nolink, [list()]) -> term().
task(Sup0, Fun0, Kind, Opts) when is_function(Fun0, 0) ->
    %% A restricted caller's fun is data like its supervisor: checked (see `seccomp_route:mediate/1').
    [Sup, Fun] = seccomp_route:mediate([Sup0, Fun0]),
    Wrapped = case seccomp_violation:spawn_ticket({'Elixir.Task.Supervisor', Kind, 2 + length(Opts)}) of
                  none -> Fun;
                  T -> fun() -> ok = seccomp_process:adopt(T), Fun() end
              end,
    erlang:apply('Elixir.Task.Supervisor', Kind, [Sup, Wrapped | Opts]).

%% Elixir's DynamicSupervisor speaks its own protocol (and names itself a
%% `supervisor' in `$initial_call'): only its state tells them apart.
is_dynamic(Sup) ->
    try sys:get_state(Sup, 5000) of
        #{'__struct__' := 'Elixir.DynamicSupervisor'} -> true;
        _ -> false
    catch
        exit:_ -> false
    end.

with_restriction(Spec, none) -> Spec;
with_restriction(Spec, {ticket, _} = R) when is_map(Spec); is_tuple(Spec) -> restrict_spec(Spec, R);
with_restriction(ExtraArgs, {ticket, T}) when is_list(ExtraArgs) -> ExtraArgs ++ [?TICKET_ARG(T)].

%% The supervisor starts the child armed with the caller's ticket. Extra
%% arguments for a `simple_one_for_one' template only reach our start
%% function when the template is restricted: otherwise the start is refused.
on_behalf(Sup, Start, SpecOrArgs, MFA) ->
    case seccomp_violation:spawn_ticket(MFA) of
        none ->
            Start(none);
        T when is_list(SpecOrArgs) ->
            case template_is_restricted(Sup) of
                true -> restricted_result(Start({ticket, T}), MFA);
                false -> seccomp_violation:refuse(MFA)
            end;
        T ->
            restricted_result(Start({ticket, T}), MFA)
    end.

%% What a restricted caller gets back is restricted, or it is not started at all.
restricted_result(Result, MFA) ->
    case started_pid(Result) of
        undefined -> Result;
        Pid ->
            case seccomp_process:is_restricted(Pid) of
                true -> Result;
                false -> exit(Pid, kill), seccomp_violation:refuse(MFA)
            end
    end.

template_is_restricted(Sup) ->
    try sys:get_state(Sup, 5000) of
        State -> holds_restricted_start(State)
    catch
        exit:_ -> false
    end.

holds_restricted_start({?MODULE, start_restricted, [_, _]}) -> true;
holds_restricted_start(T) when is_tuple(T) -> holds_restricted_start(tuple_to_list(T));
holds_restricted_start([H | Tl]) -> holds_restricted_start(H) orelse holds_restricted_start(Tl);
holds_restricted_start(M) when is_map(M) -> holds_restricted_start(maps:to_list(M));
holds_restricted_start(_) -> false.

%%% Seeing the tree --------------------------------------------------------------------

%% @doc Every local process with its restriction state.
-spec ps() -> [#{pid := pid(), name := term(), mode := disabled | filter,
                 layers := non_neg_integer(), checks := non_neg_integer(),
                 denials := non_neg_integer()}].
ps() ->
    [row(P, S) || P <- processes(), S <- [seccomp_process:status(P)], is_map(S)].

row(Pid, #{mode := Mode, layers := Layers, checks := C, denials := D}) ->
    Name = case process_info(Pid, registered_name) of
               {registered_name, N} -> N;
               _ -> initial_call(Pid)
           end,
    #{pid => Pid, name => Name, mode => Mode, layers => length(Layers), checks => C, denials => D}.

initial_call(Pid) ->
    case process_info(Pid, dictionary) of
        {dictionary, D} ->
            case proplists:get_value('$initial_call', D) of
                undefined ->
                    %% The process may exit between the two reads.
                    case process_info(Pid, initial_call) of
                        {initial_call, MFA} -> MFA;
                        undefined -> undefined
                    end;
                MFA -> MFA
            end;
        undefined -> undefined
    end.

%% @doc Print restricted processes, like `Seccomp:' lines of /proc/PID/status.
-spec print_ps() -> ok.
print_ps() ->
    Rows = [R || #{mode := filter} = R <- ps()],
    io:format("~-14s ~-40s ~-8s ~6s ~10s ~8s~n", ["PID", "NAME", "SECCOMP", "LAYERS", "CHECKS", "DENIED"]),
    [io:format("~-14s ~-40s ~-8s ~6b ~10b ~8b~n",
               [pid_to_list(P), io_lib:format("~0p", [N]), "filter", L, C, D])
     || #{pid := P, name := N, layers := L, checks := C, denials := D} <- Rows],
    io:format("~b restricted of ~b processes~n", [length(Rows), length(processes())]).

%% @doc For each distinct layer of the restricted processes, the
%% escape-capable classes it leaves open and how many of their functions.
-spec print_capabilities() -> ok.
print_capabilities() ->
    Layers = lists:usort([L || P <- processes(), #{mode := filter, layers := Ls} <- [seccomp_process:status(P)],
                               L <- Ls]),
    lists:foreach(fun print_capabilities/1, Layers).

print_capabilities(Spec) ->
    {ok, P} = seccomp_policy:new(Spec),
    Caps = seccomp_capabilities:granted(P),
    io:format("~nlayer ~ts (~b rules) leaves open:~n",
              [maps:get(mode, Spec), length(maps:get(rules, Spec))]),
    [io:format("  ~-16s ~s~n", [C, case maps:get(C, Caps) of
                                        [] -> "closed";
                                        Open -> io_lib:format("~b functions, e.g. ~0p", [length(Open), hd(Open)])
                                    end])
     || C <- seccomp_capabilities:classes()],
    ok.

%% @doc A supervision tree with each child's restriction state.
-spec tree(sup_ref()) -> [map()].
tree(Sup) ->
    [begin
         Node = #{id => Id, pid => Pid, type => Type,
                  seccomp => case is_pid(Pid) of
                                 true -> seccomp_process:status(Pid);
                                 false -> not_running
                             end},
         case Type =:= supervisor andalso is_pid(Pid) of
             true -> Node#{children => tree(Pid)};
             false -> Node
         end
     end || {Id, Pid, Type, _} <- supervisor:which_children(Sup)].
