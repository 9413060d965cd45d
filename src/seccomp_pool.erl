%% @doc Warm sandbox processes for prepared code.
%%
%% Each worker is a keeper and a runner. The runner joined the sandbox when
%% it started (the prepared policy on top of the preparer's layers, the heap
%% limit) and runs one request at a time: a run is one message each way. The
%% keeper enforces the other limits while a run is in flight (time,
%% reductions, binaries, and the limits other members report), kills the
%% runner and every process the run started when one is exceeded, and starts
%% a fresh runner. After each run the runner kills what the run started and
%% clears its dictionary, counters and stray messages, so one run cannot see
%% another's state.
%%
%% The keeper polls only while runs come in: an idle keeper sleeps until the
%% runner wakes it (an atomic flag says whether it must).
-module(seccomp_pool).

-export([init_table/0, start/1, run/4, stop/1]).

-define(TAB, seccomp_pool).
-define(RUN, '$seccomp_run').
-define(POLL_MS, 5).
-define(IDLE_POLLS, 200).
%% Per runner: deadline (0 when idle), reductions at start, abort reason,
%% keeper awake, hash of the current run's reference.
-define(DEADLINE, 1).
-define(REDS, 2).
-define(ABORT, 3).
-define(AWAKE, 4).
-define(RUN_ID, 5).

-type spec() :: #{generation := pos_integer(), module := module(), size := pos_integer(),
                  policy := seccomp_policy:t(), ticket := reference() | none,
                  language := seccomp_source:language(), opts := map()}.
-export_type([spec/0]).

%% @private The table of runners, owned by `seccomp_prepared'.
-spec init_table() -> ok.
init_table() ->
    ?TAB = ets:new(?TAB, [named_table, public, set, {read_concurrency, true}]),
    ok.

%% @doc Start a pool; returns once every runner is ready.
-spec start(spec()) -> {ok, [pid()]} | {error, term()}.
start(#{size := N} = Spec) ->
    Me = self(),
    Keepers = [spawn_monitor(fun() -> keeper(I, Spec, Me) end) || I <- lists:seq(1, N)],
    Started = [receive
                   {seccomp_pool_ready, K} -> demonitor(Ref, [flush]), {ok, K};
                   {'DOWN', Ref, process, K, Why} -> {error, Why}
               end || {K, Ref} <- Keepers],
    case [Why || {error, Why} <- Started] of
        [] -> {ok, [K || {ok, K} <- Started]};
        [Why | _] -> stop([K || {ok, K} <- Started]), {error, {pool_failed, Why}}
    end.

%% @doc Stop a pool's keepers: runs in flight end with `{error, released}'.
-spec stop([pid()]) -> ok.
stop(Keepers) ->
    [K ! seccomp_pool_stop || K <- Keepers],
    ok.

%% @doc Run prepared code in one of the pool's runners.
-spec run(pos_integer(), pos_integer(), map(), non_neg_integer()) ->
          {ok, term(), map()} | {error, seccomp_eval:reason() | released}.
run(Gen, Size, Bindings, Timeout) ->
    I = erlang:system_info(scheduler_id) rem Size + 1,
    Deadline = erlang:monotonic_time(millisecond) + Timeout,
    request(Gen, I, Bindings, Deadline, Timeout).

request(Gen, I, Bindings, Deadline, Timeout) ->
    case ets:lookup(?TAB, {Gen, I}) of
        [] ->
            {error, released};
        [{_, Runner, A}] ->
            Ref = monitor(process, Runner),
            Runner ! {?RUN, A, self(), Ref, Deadline, Bindings},
            receive
                {Ref, Result} ->
                    demonitor(Ref, [flush]),
                    Result;
                {'DOWN', Ref, process, Runner, Why} ->
                    Ours = atomics:get(A, ?RUN_ID) =:= erlang:phash2(Ref),
                    case {Ours, Why} of
                        {true, killed} -> {error, abort_reason(atomics:get(A, ?ABORT))};
                        {true, _} -> {error, {exception, exit, Why, <<"the sandbox runner failed">>}};
                        %% The runner died before our request ran: wait for its successor.
                        {false, _} ->
                            case erlang:monotonic_time(millisecond) < Deadline of
                                true ->
                                    receive after 1 -> ok end,
                                    request(Gen, I, Bindings, Deadline, Timeout);
                                false ->
                                    {error, timeout}
                            end
                    end
            after Timeout + 2000 ->
                %% The keeper enforces the deadline; this only guards against a stuck keeper.
                exit(Runner, kill),
                demonitor(Ref, [flush]),
                {error, timeout}
            end
    end.

abort_reason(1) -> timeout;
abort_reason(3) -> reduction_limit;
abort_reason(4) -> process_limit;
abort_reason(5) -> atom_limit;
abort_reason(6) -> released;
abort_reason(_) -> memory_limit.

abort_code(timeout) -> 1;
abort_code(memory_limit) -> 2;
abort_code(reduction_limit) -> 3;
abort_code(process_limit) -> 4;
abort_code(atom_limit) -> 5;
abort_code(released) -> 6.

%%% Keeper ----------------------------------------------------------------------

keeper(I, #{policy := Policy, ticket := Ticket, opts := O} = Spec, Starter) ->
    process_flag(trap_exit, true),
    Manager = monitor(process, seccomp_prepared),
    Ctx = seccomp_sandbox:open(Ticket, Policy, O#{keeper => self()}),
    Capture = seccomp_capture:start(0),
    link(Capture),
    S = spawn_runner(#{index => I, spec => Spec, ctx => Ctx, capture => Capture,
                       manager => Manager, awake => false, idle => 0}),
    Starter ! {seccomp_pool_ready, self()},
    keeper_loop(S).

keeper_loop(#{awake := false} = S) ->
    receive Msg -> keeper_loop(handle(Msg, S)) end;
keeper_loop(S) ->
    receive Msg -> keeper_loop(handle(Msg, S))
    after ?POLL_MS -> keeper_loop(poll(S))
    end.

handle(wake, #{atomics := A} = S) ->
    atomics:put(A, ?AWAKE, 1),
    S#{awake := true, idle := 0};
handle({'EXIT', Runner, _}, #{runner := Runner} = S) ->
    spawn_runner(S);
handle({seccomp_limit, _Id, _Limit, Runner}, #{runner := Runner} = S) ->
    %% The runner's own limit errors end its run with that error already.
    S;
handle({seccomp_limit, _Id, Limit, Member}, #{atomics := A, ctx := Ctx} = S) ->
    %% A process of the current run: those of earlier runs left the member
    %% table when their run ended.
    case atomics:get(A, ?DEADLINE) =/= 0 andalso seccomp_sandbox:is_member(Ctx, Member) of
        true -> abort(Limit, S);
        false -> S
    end;
handle(seccomp_pool_stop, S) ->
    shut(S);
handle({'DOWN', Manager, process, _, _}, #{manager := Manager} = S) ->
    shut(S);
handle(_Other, S) ->
    S.

-spec shut(map()) -> no_return().
shut(#{ctx := Ctx, atomics := A, capture := Capture, index := I, spec := #{generation := Gen}}) ->
    ets:delete(?TAB, {Gen, I}),
    atomics:put(A, ?ABORT, abort_code(released)),
    seccomp_sandbox:close(Ctx),
    exit(Capture, kill),
    exit(normal).

poll(#{atomics := A, idle := Idle} = S) ->
    case atomics:get(A, ?DEADLINE) of
        0 when Idle >= ?IDLE_POLLS ->
            %% Sleep, unless a run started between the two reads.
            atomics:put(A, ?AWAKE, 0),
            case atomics:get(A, ?DEADLINE) of
                0 -> S#{awake := false, idle := 0};
                _ -> atomics:put(A, ?AWAKE, 1), S
            end;
        0 ->
            S#{idle := Idle + 1};
        Deadline ->
            case erlang:monotonic_time(millisecond) >= Deadline of
                true -> abort(timeout, S);
                false -> check_usage(S#{idle := 0})
            end
    end.

check_usage(#{ctx := Ctx, atomics := A, spec := #{opts := O}} = S) ->
    {Reds, Bin} = seccomp_sandbox:usage(Ctx),
    case seccomp_sandbox:over_limit({Reds - atomics:get(A, ?REDS), Bin}, O) of
        ok -> S;
        Limit -> abort(Limit, S)
    end.

%% Kill the runner and everything the run started; the runner's exit brings a new one.
abort(Reason, #{ctx := Ctx, atomics := A} = S) ->
    atomics:put(A, ?ABORT, abort_code(Reason)),
    atomics:put(A, ?DEADLINE, 0),
    seccomp_sandbox:reset(Ctx),
    S.

spawn_runner(#{index := I, spec := Spec, ctx := Ctx, capture := Capture, awake := Awake} = S) ->
    #{generation := Gen, opts := #{max_heap_size := Heap}} = Spec,
    A = atomics:new(5, [{signed, true}]),
    atomics:put(A, ?AWAKE, case Awake of true -> 1; false -> 0 end),
    Keeper = self(),
    Runner = spawn_opt(fun() -> runner(Keeper, Ctx, A, Capture, Spec) end,
                       [link, {max_heap_size, #{size => Heap, kill => true, error_logger => false}}]),
    ets:insert(?TAB, {{Gen, I}, Runner, A}),
    S#{runner => Runner, atomics => A}.

%%% Runner ------------------------------------------------------------------------

runner(Keeper, Ctx, A, Capture, Spec) ->
    %% A crashing linked child (a Task) must end the run with an exception the
    %% run reports, not end the runner; the keeper's own exit still does.
    process_flag(trap_exit, true),
    try seccomp_sandbox:join(Ctx)
    catch _:sandbox_closed -> exit(normal)  % the pool stopped as this runner started
    end,
    group_leader(Capture, self()),
    runner_loop(Keeper, Ctx, A, Spec).

runner_loop(Keeper, Ctx, A, #{module := Mod, generation := Gen, language := Lang} = Spec) ->
    receive
        {?RUN, A, From, Ref, Deadline, Bindings} ->
            case erlang:monotonic_time(millisecond) < Deadline of
                true ->
                    atomics:put(A, ?RUN_ID, erlang:phash2(Ref)),
                    {reductions, R0} = process_info(self(), reductions),
                    atomics:put(A, ?REDS, R0),
                    atomics:put(A, ?DEADLINE, Deadline),
                    wake(Keeper, A),
                    Result = seccomp_prepare:execute(Mod, Gen, Bindings, Ctx, Lang),
                    atomics:put(A, ?DEADLINE, 0),
                    From ! {Ref, seccomp_eval:sticky(seccomp_sandbox:violation(Ctx), Result)},
                    %% The table is gone when the pool stopped during the run.
                    try seccomp_sandbox:reset(Ctx) catch error:badarg -> exit(normal) end,
                    flush(A);
                false ->
                    %% The caller has given up on this request.
                    ok
            end,
            runner_loop(Keeper, Ctx, A, Spec);
        {'EXIT', Keeper, Why} ->
            exit(Why)
    end.

wake(Keeper, A) ->
    case atomics:get(A, ?AWAKE) of
        0 -> Keeper ! wake;
        _ -> ok
    end.

%% Drop what the run left in the mailbox, keeping queued requests. Only a
%% message that carries this runner's atomics (which sandboxed code never
%% sees) is a request: the code may send itself lookalikes.
flush(A) ->
    case process_info(self(), message_queue_len) of
        {message_queue_len, 0} -> ok;
        _ -> flush_stray(A)
    end.

flush_stray(A) ->
    receive
        M when not is_tuple(M); tuple_size(M) =/= 6; element(1, M) =/= ?RUN; element(2, M) =/= A ->
            flush_stray(A)
    after 0 -> ok
    end.
