%% @doc Sandboxed evaluation of Erlang and Elixir expressions, and the entry
%% points of prepared code ({@link prepare/2}, {@link run/3}, {@link release/1}).
%%
%% Each evaluation runs in fresh processes that carry the caller's layers
%% plus the sandbox policy, under resource limits. A keeper process watches
%% the limits, and when the evaluation ends (value, error, timeout or limit)
%% kills every process the sandbox started, whether our handler or compiled
%% library code started it.
-module(seccomp_eval).

-export([eval/2, prepare/2, run/2, run/3, release/1]).

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
    case seccomp_options:options(Opts) of
        {ok, #{max_source := Max} = O} ->
            case seccomp_source:within_size(Code, Max) of
                true -> ok = seccomp_reach:ensure(), ok = seccomp_args:warm(), sandboxed(Code, O);
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
    %% What the sandbox logs must meet the log filter before any other.
    ok = seccomp_log_filter:install(),
    Ctx = seccomp_sandbox_ctx:open(CallerTicket, maps:get(policy, O), O#{keeper => Keeper}),
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
    seccomp_sandbox_members:close(Ctx),
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
    Id = seccomp_sandbox_ctx:id(Ctx),
    Wait = max(0, min(?POLL_MS, Deadline - erlang:monotonic_time(millisecond))),
    receive
        {seccomp_result, Id, Result} ->
            demonitor(RootRef, [flush]),
            seccomp_outcome:sticky(seccomp_sandbox_ctx:violation(Ctx), Result);
        {seccomp_limit, Id, Limit, Member} ->
            %% A process outside the sandbox that calls one of its funs
            %% fails alone.
            case seccomp_sandbox_members:is_member(Ctx, Member) of
                true -> {error, Limit};
                false -> watch(S)
            end;
        {'DOWN', RootRef, process, Root, killed} ->
            {error, memory_limit};
        {'DOWN', RootRef, process, Root, Why} ->
            seccomp_outcome:sticky(seccomp_sandbox_ctx:violation(Ctx), seccomp_outcome:caught(erlang, exit, Why, []));
        {seccomp_usage, Id, Usage} ->
            case seccomp_sandbox_members:over_limit(Usage, maps:get(opts, S)) of
                ok -> watch(S);
                Limit -> {error, Limit}
            end;
        {'DOWN', CallerRef, process, _, _} ->
            seccomp_sandbox_members:close(Ctx),
            exit(normal)
    after Wait ->
        case erlang:monotonic_time(millisecond) >= Deadline of
            true -> {error, timeout};
            false -> watch(with_sampler(S))
        end
    end.

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
        Keeper ! {seccomp_usage, seccomp_sandbox_ctx:id(Ctx), seccomp_sandbox_members:usage(Ctx)},
        sample(Keeper, Ref, Ctx)
    end.

%%% Inside the sandbox -------------------------------------------------------------

root(Keeper, Ctx, Code, O, Capture) ->
    seccomp_sandbox_members:enter(Ctx),
    group_leader(Capture, self()),
    Keeper ! {seccomp_result, seccomp_sandbox_ctx:id(Ctx), evaluate(Code, O, Ctx)}.

evaluate(Code, #{language := Lang} = O, Ctx) ->
    try
        #{exprs := Safe, bindings := Bindings, state := State, new_atoms := NewAtoms} = seccomp_front:front(Code, O),
        seccomp_sandbox_ctx:spend_atoms(Ctx, NewAtoms),
        {value, Value, NewBindings} = erl_eval:exprs(Safe, Bindings, none, seccomp_sandbox:handler(Ctx)),
        Result = {ok, Value, seccomp_front:bindings_out(State, maps:from_list(erl_eval:bindings(NewBindings)))},
        seccomp_sandbox_ctx:bounded_result(Result, Ctx)
    catch
        Class:Reason:Stack -> seccomp_outcome:caught(Lang, Class, Reason, Stack, Ctx)
    end.
