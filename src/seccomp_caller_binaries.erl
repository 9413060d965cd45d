%% @doc The heap and off-heap binaries of a caller-mode run.
%%
%% A caller-mode run has no keeper: the caller's heap limit (`max_heap_size'
%% for the run's duration) bounds its heap, and its binaries, which live
%% outside the heap, are bounded twice: every check that lets a run
%% allocate a binary first asks {@link within/0} (an error the run sees),
%% and whatever a loop of direct library calls keeps alive meets the heap
%% limit (OTP 27+, which counts binaries) or `seccomp_caller_watch' (before),
%% which kill the caller. The binary bytes the caller references (the
%% runtime's own O(1) count of its virtual binary heap) may grow by a fixed
%% number of `max_binary' during the run.
-module(seccomp_caller_binaries).

-export([begin_run/2, end_run/1, within/0]).

-export_type([run/0]).

%% What ending a run restores: the caller's heap limit, and whether the
%% watcher watches it.
-opaque run() :: {map(), limited | watched}.

-define(KEY, '$seccomp_caller_binaries').
%% How many times `max_binary' a run's binaries may grow by.
-define(FACTOR, 4).

%% @doc Bound the calling process for a caller-mode run: its heap may grow
%% by `HeapGrowth' words and the binaries it references by ?FACTOR times
%% `MaxBinary' bytes; past either the VM kills it (better than failing to
%% allocate). Where the heap limit can count binaries (OTP 27+,
%% `include_shared_binaries') it bounds both; before, the heap limit bounds
%% the heap, and `seccomp_caller_watch' samples the binaries.
-spec begin_run(non_neg_integer(), non_neg_integer()) -> run().
begin_run(HeapGrowth, MaxBinary) ->
    Allowance = bytes() + ?FACTOR * MaxBinary,
    put(?KEY, Allowance),
    {total_heap_size, Used} = process_info(self(), total_heap_size),
    Limit = #{size => Used + HeapGrowth, kill => true, error_logger => false},
    WithBinaries = Limit#{size := Used + HeapGrowth + Allowance div erlang:system_info(wordsize),
                          include_shared_binaries => true},
    %% (Runtimes before OTP 27 ignore the option, and their types lack it.)
    Old = erlang:apply(erlang, process_flag, [max_heap_size, WithBinaries]),
    case process_info(self(), max_heap_size) of
        {max_heap_size, #{include_shared_binaries := true}} ->
            {Old, limited};
        _ ->
            _ = process_flag(max_heap_size, Limit),
            ok = seccomp_caller_watch:watch(Allowance),
            {Old, watched}
    end.

%% @doc Give the caller its own heap limit back.
-spec end_run(run()) -> ok.
end_run({Old, How}) ->
    _ = process_flag(max_heap_size, Old),
    How =:= watched andalso seccomp_caller_watch:unwatch(),
    ok.

%% @doc Whether the calling process may allocate another binary: always
%% outside a caller-mode run; within one, when what it references stays
%% within the run's allowance (after collecting its garbage, which counts
%% until the next collection).
-spec within() -> boolean().
within() ->
    case get(?KEY) of
        undefined -> true;
        Max -> bytes() =< Max orelse (garbage_collect() andalso bytes() =< Max)
    end.

bytes() -> seccomp_vheap:bytes(self()).
