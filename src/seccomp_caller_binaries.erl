%% @doc The off-heap binaries of a caller-mode run.
%%
%% A caller-mode run's heap limit (`max_heap_size' of the caller for the
%% run's duration) does not count reference-counted binaries, which live
%% outside the heap: a loop of allocations each within `max_binary' would
%% hold binaries until the VM cannot allocate. Every check that lets a run
%% allocate a binary first asks {@link within/0}: the binary bytes the
%% caller references (the runtime's own O(1) count of its virtual binary
%% heap) may grow by a fixed number of `max_binary' during the run.
-module(seccomp_caller_binaries).

-export([start/1, within/0]).

-define(KEY, '$seccomp_caller_binaries').
%% How many times `max_binary' a run's binaries may grow by.
-define(FACTOR, 4).

%% @doc Start counting for a run in the calling process (its dictionary is
%% the run's own, see `seccomp_sandbox_ctx:begin_caller_run/1').
-spec start(non_neg_integer()) -> ok.
start(MaxBinary) ->
    put(?KEY, bytes() + ?FACTOR * MaxBinary),
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

bytes() ->
    {garbage_collection_info, Info} = process_info(self(), garbage_collection_info),
    {_, Young} = lists:keyfind(bin_vheap_size, 1, Info),
    {_, Old} = lists:keyfind(bin_old_vheap_size, 1, Info),
    (Young + Old) * erlang:system_info(wordsize).
