%% @doc Membership of a sandbox: the processes that run its code.
%%
%% Membership is given at birth. The sandbox's first process (an eval's
%% root, a pool's runner) enters it ({@link enter/1}); after that only a
%% process the sandbox itself started may join: one a member registered
%% when it spawned it, or one whose parent (or theirs, see {@link own/2})
%% is a member. `parent' is set when a process is spawned and never
%% changes, so no process becomes a member by what it does later, such as
%% calling a fun the sandbox returned or sent. Such a process (the caller
%% of `run', a server holding returned funs) gets `outside_sandbox' at the
%% fun's first checked call and is left as it was: no layers, no heap
%% limit, not counted, never killed by a reset or close.
%%
%% A process that joins takes on the sandbox's layers, counts against
%% `max_processes', gets the heap limit and is killed when the sandbox
%% ends. The member table also answers what the members use beyond their
%% heaps (reductions, off-heap binaries).
-module(seccomp_sandbox_members).

-include("seccomp_sandbox.hrl").

-export([enter/1, join/1, joined/0, own/2, register_member/2, below_process_limit/1, is_member/2,
         members/1, close/1, reset/1, left_behind/2, runner_state/0, leave/1, usage/1, over_limit/2]).

-export_type([runner_state/0]).

-type runner_state() :: [{atom(), term()}].

-define(JOINED, '$seccomp_sandbox').
%% Processes nested this deep under a member are the sandbox's own (a
%% supervisor runs no sandboxed code, so it never joins itself).
-define(MAX_OWN_DEPTH, 8).

%% @doc Make the calling process, the first of a sandbox, its member.
-spec enter(seccomp_sandbox_ctx:ctx()) -> ok.
enter(Ctx) -> enrol(Ctx).

%% @doc Make the calling process a member of the sandbox (once), if the
%% sandbox started it; fail with `outside_sandbox' otherwise.
-spec join(seccomp_sandbox_ctx:ctx()) -> ok.
join(#ctx{tab = caller} = Ctx) ->
    %% A caller-mode fun runs only within a run of the calling process.
    seccomp_sandbox_ctx:in_run(Ctx) orelse erlang:error(outside_sandbox),
    ok;
join(#ctx{id = Id} = Ctx) ->
    case get(?JOINED) of
        Id -> ok;
        _ ->
            own(Ctx, self()) orelse erlang:error(outside_sandbox),
            enrol(Ctx)
    end.

enrol(#ctx{id = Id, tab = Tab, ticket = Ticket, max_heap_size = Heap} = Ctx) ->
    %% Register first, then look for the closed mark: close/1 does the opposite,
    %% so a process either sees the mark or is seen (and killed) by close/1.
    try
        register_member(self(), Ctx),
        [] =:= ets:lookup(Tab, '$closed') orelse exit(sandbox_closed)
    catch
        error:badarg -> erlang:error(sandbox_closed)
    end,
    Ticket =:= none orelse seccomp_nif:adopt(Ticket),
    _ = process_flag(max_heap_size, #{size => Heap, kill => true, error_logger => false}),
    put(?JOINED, Id),
    ok.

%% @doc Whether `Pid' is a member, or a process a member started: its
%% parent, or theirs (at most ?MAX_OWN_DEPTH up), is a member.
-spec own(seccomp_sandbox_ctx:ctx(), pid()) -> boolean().
own(Ctx, Pid) -> own(Ctx, Pid, ?MAX_OWN_DEPTH).

own(Ctx, Pid, Depth) when is_pid(Pid), node(Pid) =:= node(), Depth > 0 ->
    is_member(Ctx, Pid) orelse
        case erlang:process_info(Pid, parent) of
            {parent, Parent} -> own(Ctx, Parent, Depth - 1);
            undefined -> false
        end;
own(_Ctx, _Other, _Depth) ->
    false.

%% @doc Whether the calling process joined a sandbox.
-spec joined() -> boolean().
joined() -> get(?JOINED) =/= undefined.

%% @doc Count a process once, whether its parent registered it or it joined itself.
-spec register_member(pid(), seccomp_sandbox_ctx:ctx()) -> ok.
register_member(Pid, #ctx{tab = Tab, max_processes = Max} = Ctx) ->
    case ets:insert_new(Tab, {Pid}) of
        false -> ok;
        true ->
            case ets:update_counter(Tab, '$count', 1) of
                N when N > Max -> seccomp_sandbox_ctx:limit(process_limit, Ctx);
                _ -> ok
            end
    end.

%% @doc Fail with `process_limit' unless one more member fits.
-spec below_process_limit(seccomp_sandbox_ctx:ctx()) -> ok.
below_process_limit(#ctx{tab = Tab, max_processes = Max} = Ctx) ->
    case ets:lookup(Tab, '$count') of
        [{_, N}] when N < Max -> ok;
        _ -> seccomp_sandbox_ctx:limit(process_limit, Ctx)
    end.

%% @doc Whether `Pid' joined the sandbox since its last reset.
-spec is_member(seccomp_sandbox_ctx:ctx(), pid()) -> boolean().
is_member(#ctx{tab = Tab}, Pid) ->
    try ets:member(Tab, Pid) catch error:badarg -> false end.

%% @doc Processes that joined the sandbox (alive or not).
-spec members(seccomp_sandbox_ctx:ctx()) -> [pid()].
members(#ctx{tab = Tab}) ->
    try ets:select(Tab, [{{'$1'}, [{is_pid, '$1'}], ['$1']}])
    catch error:badarg -> []
    end.

%% @doc End the sandbox: refuse new members, kill every member, drop the table.
-spec close(seccomp_sandbox_ctx:ctx()) -> ok.
close(#ctx{tab = Tab} = Ctx) ->
    try ets:insert(Tab, {'$closed'}) catch error:badarg -> ok end,
    Me = self(),
    [exit(P, kill) || P <- members(Ctx), P =/= Me],
    try ets:delete(Tab) catch error:badarg -> ok end,
    ok.

%% @doc Make a sandbox ready for its next run (prepared code in a warm
%% process): kill every member but the caller, and clear the counters, the
%% recorded violation and the caller's dictionary.
-spec reset(seccomp_sandbox_ctx:ctx()) -> ok.
reset(#ctx{tab = Tab} = Ctx) ->
    Me = self(),
    Member = ets:member(Tab, Me),
    Count = case Member of true -> 1; false -> 0 end,
    case ets:lookup(Tab, '$count') of
        [{_, Count}] -> ok;
        _ ->
            [begin exit(P, kill), ets:delete(Tab, P) end || P <- members(Ctx), P =/= Me],
            ets:insert(Tab, {'$count', Count})
    end,
    seccomp_sandbox_ctx:clear_run(Ctx),
    Member andalso clear_dictionary(),
    ok.

%% @doc Whether the run that just ended left something in the calling
%% process (a warm runner linked only to `Keeper') that a reset cannot take
%% back: tables it owns, a registered name, links or monitors, or processes
%% whose exit signals may still arrive. Such a process is replaced, not
%% reused: what it holds ends with it.
-spec left_behind(seccomp_sandbox_ctx:ctx(), runner_state()) -> boolean().
left_behind(#ctx{tab = Tab}, Baseline) ->
    seccomp_sandbox_state:tables_made(Tab) > 0
        orelse seccomp_sandbox_timers:any_set(Tab)
        orelse ets:lookup(Tab, '$count') =/= [{'$count', 1}]
        orelse runner_state() =/= Baseline.

%% @doc What a run may change in the process that runs it and the runner
%% cannot set back itself: its name, links, monitors, flags, group leader,
%% error handler and heap settings. Taken when a runner starts, and compared
%% after each run.
-spec runner_state() -> runner_state().
runner_state() ->
    erlang:process_info(self(), [registered_name, links, monitors, trap_exit, priority,
                                 message_queue_data, group_leader, error_handler, min_heap_size,
                                 min_bin_vheap_size, max_heap_size]).

%% @doc Leave the sandbox before the calling member ends (a replaced runner).
-spec leave(seccomp_sandbox_ctx:ctx()) -> ok.
leave(#ctx{tab = Tab}) ->
    case ets:take(Tab, self()) of
        [_] -> _ = ets:update_counter(Tab, '$count', -1), ok;
        [] -> ok
    end.

clear_dictionary() ->
    case get() of
        [{?JOINED, _}] -> true;
        _ ->
            Id = get(?JOINED),
            _ = erase(),
            put(?JOINED, Id),
            true
    end.

%% @doc Reductions and off-heap binary bytes of the sandbox's members, and
%% the largest member's memory: what `max_heap_size' does not cover (the
%% heap limit is checked when a process collects its garbage, and one that
%% does not run, a sleeping member whose mailbox others fill, never does).
-spec usage(seccomp_sandbox_ctx:ctx()) -> {non_neg_integer(), non_neg_integer(), non_neg_integer()}.
usage(Ctx) ->
    lists:foldl(fun(P, {R, B, M}) ->
                        case erlang:process_info(P, [reductions, binary, memory]) of
                            [{reductions, R1}, {binary, Bins}, {memory, M1}] ->
                                {R + R1, B + lists:sum([Sz || {_, Sz, _} <- Bins]), max(M, M1)};
                            undefined ->
                                {R, B, M}
                        end
                end, {0, 0, 0}, members(Ctx)).

%% @doc Which limit a {@link usage/1} sample exceeds, if any (reductions
%% counted from the start of the run).
%% A member may hold twice its heap limit (heap and mailbox) between two
%% collections.
-spec over_limit({integer(), non_neg_integer(), non_neg_integer()}, map()) ->
          ok | reduction_limit | memory_limit.
over_limit({Reds, Bin, Mem}, #{max_reductions := MaxReds, max_binary := MaxBin, max_heap_size := Heap}) ->
    MaxMem = 2 * Heap * erlang:system_info(wordsize),
    if
        Reds > MaxReds -> reduction_limit;
        Bin > MaxBin -> memory_limit;
        Mem > MaxMem -> memory_limit;
        true -> ok
    end.
