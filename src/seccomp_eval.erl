%% @doc Sandboxed evaluation of Erlang and Elixir expressions, and the entry
%% points of prepared code ({@link prepare/2}, {@link run/3}, {@link release/1}).
%%
%% Each evaluation runs in fresh processes that carry the caller's layers
%% plus the sandbox policy, under resource limits. A keeper process watches
%% the limits, and when the evaluation ends (value, error, timeout or limit)
%% kills every process the sandbox started, whether our handler or compiled
%% library code started it.
-module(seccomp_eval).

-export([eval/2, options/1, prepare/2, run/2, run/3, release/1]).

-export([front/2, caught/4, caught/5, bindings_out/2, sticky/2]).

-export_type([result/0, reason/0, options/0, bindings_state/0]).

-type reason() :: {seccomp_violation, mfa()} | timeout | memory_limit | reduction_limit
                | process_limit | atom_limit | {syntax_error, pos_integer(), binary()}
                | {compile_error, pos_integer(), binary()}
                | {unsafe_form, pos_integer(), string()}
                | {exception, error | exit | throw, term(), binary()}
                | {invalid_option, term()} | {invalid_policy, term()}
                | {eval_limit, size, non_neg_integer()}.
-type result() :: {ok, term(), list()} | {ok, term(), list(), binary()} | {error, reason()}.
-type options() :: #{policy := seccomp_policy:t(), language := erlang | elixir,
                     bindings := list() | map(), atom() => term()}.
%% How Erlang variables at the end of a run become the user's bindings.
%% (`elixir_names': each Elixir variable's final Erlang name, sorted by name.)
-type bindings_state() :: erlang | {elixir, term(), term()} | {elixir_names, [{atom(), atom() | nil}]}.

-define(DEFAULTS, #{policy => pure, language => erlang, bindings => [], timeout => 5000,
                    max_heap_size => 4000000, max_binary => 16000000,
                    max_reductions => 200000000, max_processes => 100, max_atoms => 100,
                    max_output => 65536, output => discard, send_to => [], allow => [],
                    deny => [], max_source => 65536}).
-define(POLL_MS, 5).

%% @doc Evaluate `Code' under a policy and limits.
%%
%% Options: `policy' (a policy, a policy map, or a profile: `pure' (default)
%% or `processes'), `allow' and `deny' (patterns that extend or narrow it),
%% `language' (`erlang' or `elixir'), `bindings', `timeout' (ms),
%% `max_heap_size' (words, per process), `max_binary' (bytes),
%% `max_reductions', `max_processes', `max_atoms', `output' (`discard',
%% `capture': the result gets the printed text as a fourth element, or a pid
%% that receives `{seccomp_output, Binary}'), `max_output' (bytes),
%% `send_to' (registered names or pids the code may send to) and
%% `max_source' (bytes of source, or of a quoted form's external format;
%% past it: `{error, {eval_limit, size, Max}}').
-spec eval(iodata() | term(), map() | list()) -> result().
eval(Code, Opts) ->
    case options(Opts) of
        {ok, #{max_source := Max} = O} ->
            case seccomp_source:within_size(Code, Max) of
                true -> sandboxed(Code, O);
                false -> {error, {eval_limit, size, Max}}
            end;
        {error, _} = E ->
            E
    end.

%% @doc Prepare `Code' once to run it many times: compiled after the same
%% mediation as `eval/2', and run in a pool of warm sandbox processes or in
%% the caller's own process. See `seccomp_prepare:prepare/2' for the options.
-spec prepare(iodata() | term(), map() | list()) ->
          {ok, seccomp_prepare:prepared()} | {error, seccomp_prepare:reason()}.
prepare(Code, Opts) -> seccomp_prepare:prepare(Code, Opts).

%% @doc Run prepared code with `Bindings', in the prepared value's mode.
-spec run(seccomp_prepare:prepared(), list() | map()) -> result() | {error, seccomp_prepare:reason()}.
run(Prepared, Bindings) -> seccomp_prepare:run(Prepared, Bindings, #{}).

%% @doc Run prepared code; options `mode' (`pool' or `caller') and `timeout'.
-spec run(seccomp_prepare:prepared(), list() | map(), map() | list()) ->
          result() | {error, seccomp_prepare:reason()}.
run(Prepared, Bindings, Opts) -> seccomp_prepare:run(Prepared, Bindings, Opts).

%% @doc Release prepared code and its slot.
-spec release(seccomp_prepare:prepared()) -> ok | {error, {invalid_option, {prepared, term()}}}.
release(Prepared) -> seccomp_prepare:release(Prepared).

%%% Options -------------------------------------------------------------------

%% @doc Validate options and fill in the defaults.
-spec options(map() | list()) -> {ok, options()} | {error, reason()}.
options(Opts) when is_list(Opts) ->
    try maps:from_list(Opts) of M -> options(M)
    catch error:badarg -> {error, {invalid_option, Opts}}
    end;
options(Opts) when is_map(Opts) ->
    case maps:keys(maps:without(maps:keys(?DEFAULTS), Opts)) of
        [K | _] ->
            {error, {invalid_option, K}};
        [] ->
            O = maps:merge(?DEFAULTS, Opts),
            try
                [valid(K, maps:get(K, O)) || K <- maps:keys(O)],
                {ok, O#{policy := sandbox_policy(O)}}
            catch
                throw:{invalid, Why} -> {error, Why}
            end
    end;
options(Other) ->
    {error, {invalid_option, Other}}.

valid(K, V) when K =:= timeout; K =:= max_heap_size; K =:= max_binary; K =:= max_reductions;
                 K =:= max_processes; K =:= max_atoms; K =:= max_output; K =:= max_source ->
    is_integer(V) andalso V >= 0 orelse throw({invalid, {invalid_option, {K, V}}});
valid(language, V) ->
    V =:= erlang orelse V =:= elixir orelse throw({invalid, {invalid_option, {language, V}}});
valid(output, V) ->
    V =:= discard orelse V =:= capture orelse is_pid(V)
        orelse throw({invalid, {invalid_option, {output, V}}});
valid(bindings, V) ->
    is_map(V) orelse (is_list(V) andalso lists:all(fun({N, _}) -> is_atom(N); (_) -> false end, V))
        orelse throw({invalid, {invalid_option, {bindings, V}}});
valid(K, V) when K =:= send_to; K =:= allow; K =:= deny ->
    is_list(V) orelse throw({invalid, {invalid_option, {K, V}}});
valid(policy, _) ->
    ok.

%% The sandbox's own layer: the chosen policy, extended by `allow' and
%% narrowed by `deny', always passed on to the sandbox's children. Compiling a
%% profile is most of an evaluation's fixed cost, so plain profiles are
%% compiled once per VM. A denylist also denies what reaches its denials or
%% the VM's capabilities through compiled code (see `seccomp_denylist').
sandbox_policy(O) -> seccomp_denylist:extend(layer(O)).

layer(#{policy := Name, allow := [], deny := []}) when is_atom(Name) ->
    Key = {?MODULE, profile, Name},
    case persistent_term:get(Key, undefined) of
        undefined ->
            Policy = build_policy(#{policy => Name, allow => [], deny => []}),
            persistent_term:put(Key, Policy),
            Policy;
        Policy ->
            Policy
    end;
layer(O) ->
    case O of
        #{policy := P, allow := [], deny := []} ->
            case seccomp_policy:is_policy(P) andalso maps:get(inherit, seccomp_policy:spec(P)) of
                true -> P;
                false -> build_policy(O)
            end;
        _ ->
            build_policy(O)
    end.

build_policy(#{policy := P, allow := Allow, deny := Deny}) ->
    Spec = case P of
               Name when is_atom(Name) ->
                   case seccomp_profiles:profile(Name) of
                       {ok, Map} -> Map;
                       {error, Why} -> throw({invalid, Why})
                   end;
               _ ->
                   case seccomp_policy:new(P) of
                       {ok, Policy} -> seccomp_policy:spec(Policy);
                       {error, Why} -> throw({invalid, Why})
                   end
           end,
    Rules = maps:get(rules, Spec, []) ++ Allow ++ [#{match => D, action => error} || D <- Deny],
    case seccomp_policy:new(Spec#{rules => Rules, inherit => true}) of
        {ok, Policy1} -> Policy1;
        {error, Why1} -> throw({invalid, Why1})
    end.

%%% Running -----------------------------------------------------------------------

sandboxed(Code, #{timeout := Timeout} = O) ->
    Ticket = seccomp_violation:spawn_ticket({seccomp_eval, eval, 2}),
    Caller = self(),
    {Keeper, Ref} = erlang:spawn_monitor(fun() -> keeper(Caller, Code, O, Ticket) end),
    receive
        {seccomp_eval_result, Keeper, Result} ->
            demonitor(Ref, [flush]),
            Result;
        {'DOWN', Ref, process, Keeper, Why} ->
            {error, {exception, exit, Why, <<"the sandbox keeper failed">>}}
    after Timeout + 5000 ->
        exit(Keeper, kill),
        {error, timeout}
    end.

keeper(Caller, Code, O, CallerTicket) ->
    CallerRef = monitor(process, Caller),
    Keeper = self(),
    Ctx = seccomp_sandbox:open(CallerTicket, maps:get(policy, O), O#{keeper => Keeper}),
    %% Even discarded output (and compiler warnings) must not reach the host's console.
    Capture = case maps:get(output, O) of
                  discard -> seccomp_capture:start(0);
                  _ -> seccomp_capture:start(maps:get(max_output, O))
              end,
    Heap = maps:get(max_heap_size, O),
    {Root, RootRef} =
        erlang:spawn_opt(fun() -> root(Keeper, Ctx, Code, O, Capture) end,
                         [monitor, {max_heap_size, #{size => Heap, kill => true, error_logger => false}}]),
    Deadline = erlang:monotonic_time(millisecond) + maps:get(timeout, O),
    State = #{ctx => Ctx, root => Root, root_ref => RootRef, caller_ref => CallerRef,
              deadline => Deadline, opts => O},
    Result = watch(State),
    seccomp_sandbox:close(Ctx),
    Caller ! {seccomp_eval_result, self(), with_output(Result, Capture, O)}.

with_output(Result, Capture, #{output := Output}) ->
    Text = seccomp_capture:take(Capture),
    exit(Capture, kill),
    case {Output, Result} of
        {capture, {ok, V, Bs}} -> {ok, V, Bs, Text};
        {Pid, _} when is_pid(Pid) -> Pid ! {seccomp_output, Text}, Result;
        _ -> Result
    end.

watch(#{ctx := Ctx, root := Root, root_ref := RootRef, caller_ref := CallerRef,
        deadline := Deadline} = S) ->
    Id = seccomp_sandbox:id(Ctx),
    Wait = max(0, min(?POLL_MS, Deadline - erlang:monotonic_time(millisecond))),
    receive
        {seccomp_result, Id, Result} ->
            demonitor(RootRef, [flush]),
            sticky(seccomp_sandbox:violation(Ctx), Result);
        {seccomp_limit, Id, Limit, _Member} ->
            {error, Limit};
        {'DOWN', RootRef, process, Root, killed} ->
            {error, memory_limit};
        {'DOWN', RootRef, process, Root, Why} ->
            sticky(seccomp_sandbox:violation(Ctx), caught(erlang, exit, Why, []));
        {seccomp_usage, Id, Usage} ->
            case seccomp_sandbox:over_limit(Usage, maps:get(opts, S)) of
                ok -> watch(S);
                Limit -> {error, Limit}
            end;
        {'DOWN', CallerRef, process, _, _} ->
            seccomp_sandbox:close(Ctx),
            exit(normal)
    after Wait ->
        case erlang:monotonic_time(millisecond) >= Deadline of
            true -> {error, timeout};
            false -> watch(with_sampler(S))
        end
    end.

%% @private A violation the code caught still decides the result.
-spec sticky(none | mfa(), Result) -> Result | {error, {seccomp_violation, mfa()}}.
sticky(none, Result) -> Result;
sticky(MFA, _Result) -> {error, {seccomp_violation, MFA}}.

%% Reductions and off-heap binaries are not covered by max_heap_size: a
%% sampler reports them every few milliseconds. It is its own process because
%% process_info/2 waits for a process busy in a long BIF, and the keeper must
%% stay free to enforce the timeout. Started once the eval outlasts a poll
%% interval, so short evaluations spawn none; it ends with the keeper.
with_sampler(#{sampler := _} = S) ->
    S;
with_sampler(#{ctx := Ctx} = S) ->
    Keeper = self(),
    S#{sampler => spawn(fun() -> sample(Keeper, monitor(process, Keeper), Ctx) end)}.

sample(Keeper, Ref, Ctx) ->
    receive
        {'DOWN', Ref, process, Keeper, _} -> ok
    after ?POLL_MS ->
        Keeper ! {seccomp_usage, seccomp_sandbox:id(Ctx), seccomp_sandbox:usage(Ctx)},
        sample(Keeper, Ref, Ctx)
    end.

%%% Inside the sandbox -------------------------------------------------------------

root(Keeper, Ctx, Code, O, Capture) ->
    seccomp_sandbox:join(Ctx),
    group_leader(Capture, self()),
    Keeper ! {seccomp_result, seccomp_sandbox:id(Ctx), evaluate(Code, O, Ctx)}.

evaluate(Code, #{language := Lang} = O, Ctx) ->
    try
        #{exprs := Safe, bindings := Bindings, state := State, new_atoms := NewAtoms} = front(Code, O),
        seccomp_sandbox:spend_atoms(Ctx, NewAtoms),
        {value, Value, NewBindings} = erl_eval:exprs(Safe, Bindings, none, seccomp_sandbox:handler(Ctx)),
        Result = {ok, Value, bindings_out(State, maps:from_list(erl_eval:bindings(NewBindings)))},
        seccomp_sandbox:bounded_result(Result, Ctx)
    catch
        Class:Reason:Stack -> caught(Lang, Class, Reason, Stack, Ctx)
    end.

%% @private The front end both back ends share (this interpreter and the
%% compiler of prepared code): parse within the atom budget, refuse what
%% cannot be mediated, translate Elixir, and run the mediation pass. Throws
%% `{seccomp_eval_error, Reason}'.
-spec front(iodata() | term(), options()) ->
          #{exprs := [erl_parse:abstract_expr()], bindings := erl_eval:binding_struct(),
            state := bindings_state(), names := [{atom(), atom()}], new_atoms := non_neg_integer()}.
front(Code, #{language := Lang, max_atoms := MaxAtoms, policy := Policy} = O) ->
    {ok, Parsed, NewAtoms} = ok_or_throw(seccomp_source:parse(Lang, Code, MaxAtoms)),
    {ok, Exprs, Bindings, State, Names} = ok_or_throw(translate(Parsed, O)),
    Markers = seccomp_profiles:spawns(seccomp_policy:spec(Policy)),
    {ok, Mediated} = ok_or_throw(seccomp_rewrite:exprs(Exprs, #{enter_markers => Markers})),
    {ok, Safe} = ok_or_throw(seccomp_compare:exprs(Mediated)),
    #{exprs => Safe, bindings => Bindings, state => State, names => Names, new_atoms => NewAtoms}.

%% @private An exception from running sandboxed code, as an error result,
%% unless it is too large to format or copy out of the sandbox.
-spec caught(seccomp_source:language(), error | exit | throw, term(), list(), seccomp_sandbox:ctx()) ->
          {error, reason()}.
caught(Lang, Class, Reason, Stack, Ctx) ->
    case seccomp_sandbox:copyable({Reason, Stack}, Ctx) of
        true -> caught(Lang, Class, Reason, Stack);
        false -> {error, memory_limit}
    end.

-spec caught(seccomp_source:language(), error | exit | throw, term(), list()) -> {error, reason()}.
caught(_Lang, throw, {seccomp_eval_error, Reason}, _Stack) ->
    {error, Reason};
caught(_Lang, error, {seccomp_violation, MFA}, _Stack) ->
    {error, {seccomp_violation, MFA}};
caught(_Lang, error, Limit, _Stack)
  when Limit =:= atom_limit; Limit =:= memory_limit; Limit =:= process_limit ->
    {error, Limit};
caught(Lang, Class, Reason, Stack) ->
    %% Formatting runs host code on the reason: only on an inert copy of it.
    {Normal, Text} = seccomp_inert:describe(Lang, Class, Reason, Stack),
    {error, {exception, Class, Normal, Text}}.

%% @private The user's bindings from the Erlang variables at the end of a run.
-spec bindings_out(bindings_state(), #{atom() => term()}) -> [{atom(), term()}].
bindings_out(erlang, Vars) -> lists:sort(maps:to_list(Vars));
bindings_out({elixir, ExS, ErlS}, Vars) -> seccomp_elixir:dump_bindings(Vars, {ExS, ErlS});
bindings_out({elixir_names, Names}, Vars) -> [{Ex, maps:get(Erl, Vars, nil)} || {Ex, Erl} <- Names].

ok_or_throw({error, Reason}) -> throw({seccomp_eval_error, Reason});
ok_or_throw(Ok) -> Ok.

%% Also returns how the user's variable names map to Erlang's.
translate({erlang, Exprs}, #{bindings := Bs}) ->
    List = binding_list(Bs),
    Bindings = lists:foldl(fun({K, V}, Acc) -> erl_eval:add_binding(K, V, Acc) end,
                           erl_eval:new_bindings(), List),
    {ok, Exprs, Bindings, erlang, [{K, K} || {K, _} <- List]};
translate({elixir, Quoted}, #{bindings := Bs}) ->
    case seccomp_elixir:check_quoted(Quoted) of
        ok ->
            case seccomp_elixir:to_erl(Quoted, binding_list(Bs)) of
                {ok, Exprs, Bindings, {ExS, ErlS}, Names} ->
                    {ok, Exprs, Bindings, {elixir, ExS, ErlS}, Names};
                {error, _} = E -> E
            end;
        {error, _} = E -> E
    end.

binding_list(Bs) when is_map(Bs) -> maps:to_list(Bs);
binding_list(Bs) -> Bs.
