%% @doc Warm sandbox processes for prepared code.
%%
%% Each worker is a keeper and a runner. The runner joined the sandbox when
%% it started (the prepared policy on top of the preparer's layers, the heap
%% limit) and runs one request at a time. Requests queue in the keeper, which
%% hands the runner the next one when it is idle: the runner's mailbox never
%% holds another caller's request, which the run could read. The
%% keeper enforces the other limits while a run is in flight (time,
%% reductions, binaries, and the limits other members report), kills the
%% runner and every process the run started when one is exceeded, and starts
%% a fresh runner. After each run the runner kills what the run started and
%% clears its dictionary, counters and stray messages, so one run cannot see
%% another's state; a run that left what a runner cannot clear (tables it
%% owns, a registered name, links, monitors, processes whose exit signals may
%% still arrive) ends its runner, and the keeper starts a fresh one, as does
%% every run of code that receives (a timer it set would deliver into the
%% next run's mailbox).
%%
%% The keeper polls only while runs come in: an idle keeper sleeps until the
%% runner wakes it (an atomic flag says whether it must).
-module(seccomp_pool).

-export([init_table/0, start/1, run/4, stop/1]).

%% How long after its deadline a caller waits for a reply (a run at its
%% deadline is being stopped and its reply is on its way).
-define(CALLER_MARGIN, 100).
%% What an idle runner may keep before it collects its garbage.
-define(IDLE_HEAP_WORDS, 65536).
-define(IDLE_BINARY_BYTES, 1048576).
-define(TAB, seccomp_pool).
-define(RUN, '$seccomp_run').
-define(POLL_MS, 5).
-define(IDLE_POLLS, 200).
%% Per runner: deadline (0 when idle), reductions at start, abort reason,
%% keeper awake.
-define(DEADLINE, 1).
-define(REDS, 2).
-define(ABORT, 3).
-define(AWAKE, 4).

-type spec() :: #{generation := pos_integer(), module := module(), size := pos_integer(),
                  policy := seccomp_policy:t(), ticket := reference() | none,
                  language := seccomp_source:language(), opts := map(),
                  %% The code receives: a message a run leaves for later
                  %% (a timer) must not reach the next run.
                  receives := boolean()}.
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
        [{_, Keeper}] ->
            %% Replies go to the alias: one that comes after we gave up is dropped.
            Ref = monitor(process, Keeper, [{alias, demonitor}]),
            Keeper ! {?RUN, Ref, Deadline, Bindings},
            receive
                {Ref, Result} ->
                    demonitor(Ref, [flush]),
                    Result;
                {'DOWN', Ref, process, Keeper, _} ->
                    {error, released}
            after Timeout + ?CALLER_MARGIN ->
                %% The keeper enforces the deadline of the run under way; a
                %% request still queued behind another caller's run ends here.
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
    %% What the pool's runs log must meet the log filter before any other.
    ok = seccomp_log_filter:install(),
    Ctx = seccomp_sandbox_ctx:open(Ticket, Policy, O#{keeper => self()}),
    Capture = seccomp_capture:start(0),
    link(Capture),
    S = spawn_runner(#{index => I, spec => Spec, ctx => Ctx, capture => Capture,
                       manager => Manager, awake => false, idle => 0,
                       queue => queue:new(), current => none}),
    #{generation := Gen} = Spec,
    ets:insert(?TAB, {{Gen, I}, self()}),
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
handle({?RUN, Alias, Deadline, Bindings}, #{queue := Q} = S) when is_reference(Alias) ->
    next(S#{queue := queue:in({Alias, Deadline, Bindings}, Q)});
handle({seccomp_pool_idle, Runner}, #{runner := Runner} = S) ->
    next(S#{current := none});
handle({seccomp_pool_retired, Runner}, #{runner := Runner} = S) ->
    %% Its exit (normal) is ignored: a fresh runner takes the next request.
    next(spawn_runner(S#{current := none}));
handle({'EXIT', Runner, Why}, #{runner := Runner, atomics := A} = S) ->
    %% A run in flight ends with the reason the runner was killed for.
    _ = case maps:get(current, S) of
            none -> ok;
            Alias -> Alias ! {Alias, runner_failed(atomics:get(A, ?ABORT), Why)}
        end,
    next(spawn_runner(S#{current := none}));
handle({seccomp_limit, _Id, _Limit, Runner}, #{runner := Runner} = S) ->
    %% The runner's own limit errors end its run with that error already.
    S;
handle({seccomp_limit, _Id, Limit, Member}, #{atomics := A, ctx := Ctx} = S) ->
    %% A process of the current run: those of earlier runs left the member
    %% table when their run ended.
    case atomics:get(A, ?DEADLINE) =/= 0 andalso seccomp_sandbox_members:is_member(Ctx, Member) of
        true -> abort(Limit, S);
        false -> S
    end;
handle(seccomp_pool_stop, S) ->
    shut(S);
handle({'DOWN', Manager, process, _, _}, #{manager := Manager} = S) ->
    shut(S);
handle(_Other, S) ->
    S.

%% Hand the runner the next request whose caller still waits.
next(#{current := none, queue := Q, runner := Runner, atomics := A} = S) ->
    case queue:out(Q) of
        {empty, _} ->
            S;
        {{value, {Alias, Deadline, Bindings}}, Q1} ->
            case erlang:monotonic_time(millisecond) < Deadline of
                true ->
                    atomics:put(A, ?ABORT, 0),
                    Runner ! {?RUN, A, Alias, Deadline, Bindings},
                    S#{queue := Q1, current := Alias};
                false ->
                    Alias ! {Alias, {error, timeout}},
                    next(S#{queue := Q1})
            end
    end;
next(S) ->
    S.

%% Killed without an abort: the heap limit.
runner_failed(0, killed) -> {error, memory_limit};
runner_failed(0, Why) -> {error, {exception, exit, seccomp_inert:term(Why), <<"the sandbox runner failed">>}};
runner_failed(Code, _Why) -> {error, abort_reason(Code)}.

-spec shut(map()) -> no_return().
shut(#{ctx := Ctx, atomics := A, capture := Capture, index := I, spec := #{generation := Gen}} = S) ->
    ets:delete(?TAB, {Gen, I}),
    %% Runs in flight or queued end released.
    Waiting = [maps:get(current, S) | [Al || {Al, _, _} <- queue:to_list(maps:get(queue, S))]],
    _ = [Alias ! {Alias, {error, released}} || Alias <- Waiting, Alias =/= none],
    atomics:put(A, ?ABORT, abort_code(released)),
    seccomp_sandbox_members:close(Ctx),
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
    {Reds, Bin, Mem} = seccomp_sandbox_members:usage(Ctx),
    case seccomp_sandbox_members:over_limit({Reds - atomics:get(A, ?REDS), Bin, Mem}, O) of
        ok -> S;
        Limit -> abort(Limit, S)
    end.

%% Kill the runner and everything the run started; the runner's exit brings a new one.
abort(Reason, #{ctx := Ctx, atomics := A} = S) ->
    atomics:put(A, ?ABORT, abort_code(Reason)),
    atomics:put(A, ?DEADLINE, 0),
    seccomp_sandbox_members:reset(Ctx),
    S.

spawn_runner(#{spec := Spec, ctx := Ctx, capture := Capture, awake := Awake} = S) ->
    #{opts := #{max_heap_size := Heap}} = Spec,
    A = atomics:new(5, [{signed, true}]),
    atomics:put(A, ?AWAKE, case Awake of true -> 1; false -> 0 end),
    Keeper = self(),
    Runner = spawn_opt(fun() -> runner(Keeper, Ctx, A, Capture, Spec) end,
                       [link, {max_heap_size, #{size => Heap, kill => true, error_logger => false}}]),
    S#{runner => Runner, atomics => A}.

%%% Runner ------------------------------------------------------------------------

runner(Keeper, Ctx, A, Capture, Spec) ->
    %% A crashing linked child (a Task) must end the run with an exception the
    %% run reports, not end the runner; the keeper's own exit still does.
    process_flag(trap_exit, true),
    try seccomp_sandbox_members:enter(Ctx)
    catch _:sandbox_closed -> exit(normal)  % the pool stopped as this runner started
    end,
    group_leader(Capture, self()),
    runner_loop(Keeper, Ctx, A, Spec, seccomp_sandbox_members:runner_state()).

runner_loop(Keeper, Ctx, A, #{module := Mod, generation := Gen, language := Lang} = Spec, Baseline) ->
    receive
        {?RUN, A, Alias, Deadline, Bindings} ->
            {reductions, R0} = process_info(self(), reductions),
            atomics:put(A, ?REDS, R0),
            atomics:put(A, ?DEADLINE, Deadline),
            wake(Keeper, A),
            Result = seccomp_outcome:execute(Mod, Gen, Bindings, Ctx, Lang),
            atomics:put(A, ?DEADLINE, 0),
            Alias ! {Alias, seccomp_outcome:sticky(seccomp_sandbox_ctx:violation(Ctx), Result)},
            case after_run(Ctx, Baseline, maps:get(receives, Spec)) of
                retire ->
                    %% Tables, a name, links, late exit signals: they end
                    %% with this runner, and the keeper starts a fresh one.
                    Keeper ! {seccomp_pool_retired, self()},
                    exit(normal);
                reuse ->
                    flush(Keeper),
                    shed(),
                    Keeper ! {seccomp_pool_idle, self()},
                    runner_loop(Keeper, Ctx, A, Spec, Baseline)
            end;
        {'EXIT', Keeper, Why} ->
            exit(Why)
    end.

%% Kill what the run started and clear its state; `retire' when the run
%% left what the runner cannot clear, or may have (a timer sends later, and
%% only code that receives can read it).
after_run(Ctx, Baseline, Receives) ->
    try
        Retire = Receives orelse seccomp_sandbox_members:left_behind(Ctx, Baseline),
        seccomp_sandbox_members:reset(Ctx),
        case Retire of
            true -> seccomp_sandbox_members:leave(Ctx), retire;
            false -> reuse
        end
    catch
        %% The table is gone when the pool stopped during the run.
        error:badarg -> exit(normal)
    end.

%% Give back what the run left dead: an idle runner holds no garbage (its
%% heap, and binaries up to `max_binary' each, until its next collection).
shed() ->
    {total_heap_size, Words} = process_info(self(), total_heap_size),
    case Words > ?IDLE_HEAP_WORDS orelse seccomp_vheap:bytes(self()) > ?IDLE_BINARY_BYTES of
        true -> garbage_collect(), ok;
        false -> ok
    end.

wake(Keeper, A) ->
    case atomics:get(A, ?AWAKE) of
        0 -> Keeper ! wake;
        _ -> ok
    end.

%% Drop what the run left in the mailbox: requests come from the keeper one
%% at a time, after the runner said it is idle.
flush(Keeper) ->
    receive
        {'EXIT', Keeper, Why} -> exit(Why);
        _ -> flush(Keeper)
    after 0 -> ok
    end.
