%% @doc Memory a run holds outside every heap behind a small handle: the
%% tables of `binary:compile_pattern/1', the arrays of `atomics:new/2' and
%% `counters:new/2', monitors, aliases and links (the runtime's own
%% records, and a copy of a monitor's `tag' each). A handle is a few words on the heap, so neither the heap
%% limit nor the binary sampling sees what it holds, and each call alone is
%% within `max_binary'; a loop keeps any number of them alive. Every such
%% allocation is charged to the run, whether or not its handle is dropped
%% since, and the run stops at ?FACTOR times `max_binary'.
-module(seccomp_offheap).

-export([charge/4, charge_term/2, forget/1]).

-define(KEY, '$seccomp_offheap').
%% How many times `max_binary' a run may allocate off the heap.
-define(FACTOR, 4).
%% The goto table of one Aho-Corasick node (see `seccomp_cost'), and the
%% Boyer-Moore table of a single pattern: 256 words each.
-define(TABLE_BYTES, 2048).
%% What the runtime keeps for a monitor, alias or link (both ends).
-define(RECORD_BYTES, 256).

%% @doc Charge the off-heap memory the call `M:F(Args...)' would allocate
%% to the run kept in `Store' (its member table, or `caller': the caller's
%% dictionary, the run's own); false once the run's total would pass
%% ?FACTOR times `MaxBinary'.
-spec charge(module(), atom(), list(), {ets:tid() | caller, non_neg_integer()}) -> boolean().
charge(M, F, Args, {Store, MaxBinary}) ->
    case bytes(M, F, Args, ?FACTOR * MaxBinary) of
        0 -> true;
        over -> false;
        Bytes -> add(Store, Bytes) =< ?FACTOR * MaxBinary
    end.

%% @doc Charge the run kept in `Store' with what keeping a copy of `Term'
%% costs (a timer's message); false once the run's total would pass ?FACTOR
%% times `MaxBinary'.
-spec charge_term(term(), {ets:tid() | caller, non_neg_integer()}) -> boolean().
charge_term(Term, {Store, MaxBinary}) ->
    case seccomp_size:cost(Term, ?FACTOR * MaxBinary, term) of
        over -> false;
        Bytes -> add(Store, Bytes) =< ?FACTOR * MaxBinary
    end.

%% @doc Forget a run's total (a warm process's next run).
-spec forget(ets:tid()) -> ok.
forget(Tab) ->
    ets:delete(Tab, ?KEY),
    ok.

%% A monitor, an alias or a link: the runtime's record of it (and of its
%% other end), and a monitor's options (its `tag') copied.
bytes(M, monitor, [_Type, _Item, Opts], Limit) when M =:= erlang; M =:= 'Elixir.Process' ->
    case seccomp_size:cost(Opts, Limit, term) of
        over -> over;
        Cost -> ?RECORD_BYTES + Cost
    end;
bytes(M, F, _Args, _Limit) when (M =:= erlang orelse M =:= 'Elixir.Process'),
                                (F =:= monitor orelse F =:= alias orelse F =:= link
                                 orelse F =:= spawn_monitor orelse F =:= spawn_link) ->
    ?RECORD_BYTES;
bytes(M, F, Args, _Limit) ->
    bytes(M, F, Args).

bytes(binary, compile_pattern, [Pattern]) -> pattern_bytes(Pattern);
bytes(atomics, new, [N, _Opts]) when is_integer(N), N > 0 -> 8 * N;
bytes(counters, new, [N, Opts]) when is_integer(N), N > 0, is_list(Opts) ->
    %% Write concurrency keeps a copy per scheduler.
    case lists:member(write_concurrency, Opts) of
        true -> 8 * N * (1 + erlang:system_info(schedulers));
        false -> 8 * N
    end;
bytes(_M, _F, _Args) -> 0.

pattern_bytes(B) when is_binary(B) -> ?TABLE_BYTES + byte_size(B);
pattern_bytes(L) when is_list(L) ->
    ?TABLE_BYTES * (1 + lists:sum([byte_size(B) || B <- L, is_binary(B)]));
pattern_bytes(_Other) -> 0.

add(caller, Bytes) ->
    Total = case get(?KEY) of undefined -> Bytes; N -> N + Bytes end,
    put(?KEY, Total),
    Total;
add(Tab, Bytes) ->
    ets:update_counter(Tab, ?KEY, Bytes, {?KEY, 0}).
