%% @doc The bytes of the reference-counted binaries a process references:
%% the runtime's O(1) count of its virtual binary heaps (young and old), as
%% `garbage_collection_info' reports them. Binaries dropped since the
%% process's last collection still count.
-module(seccomp_vheap).

-export([bytes/1]).

%% @doc The binary bytes `Pid' references; `undefined' once it has ended.
-spec bytes(pid()) -> non_neg_integer() | undefined.
bytes(Pid) ->
    case process_info(Pid, garbage_collection_info) of
        {garbage_collection_info, Info} ->
            {_, Young} = lists:keyfind(bin_vheap_size, 1, Info),
            {_, Old} = lists:keyfind(bin_old_vheap_size, 1, Info),
            (Young + Old) * erlang:system_info(wordsize);
        undefined ->
            undefined
    end.
