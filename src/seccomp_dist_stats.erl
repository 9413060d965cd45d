%% @doc Counters of the `seccomp' carrier's verdicts per peer and kind, the
%% last refusal per peer, and rate-limited log lines about refused traffic.
-module(seccomp_dist_stats).

-export([init/0, accepted/3, refused/3, malformed/2, stats/0, bounded/1]).

-define(TAB, seccomp_dist_stats).
%% At most this many log lines per peer and second; the rest are counted.
-define(LOGS_PER_SECOND, 10).
-define(DOMAIN, #{domain => [beam_seccomp, dist]}).
%% Refusal reasons up to this size are kept as they are; larger ones as a
%% summary of at most ?SUMMARY_BYTES.
-define(SMALL_WORDS, 64).
-define(SUMMARY_BYTES, 200).

%% @doc Create the table (once; its owner is the process that listens).
-spec init() -> ok.
init() ->
    _ = ets:info(?TAB) =:= undefined
        andalso ets:new(?TAB, [named_table, public, {write_concurrency, true}]),
    ok.

%% @doc Add `N' accepted packets of a kind (receivers count in batches).
-spec accepted(node(), atom(), pos_integer()) -> ok.
accepted(Node, Kind, N) ->
    Key = {Node, Kind, accepted},
    _ = catch_badarg(fun() -> ets:update_counter(?TAB, Key, N, {Key, 0}) end),
    ok.

%% @doc Count, remember and (rate-limited) log a refused packet.
-spec refused(node(), atom(), term()) -> ok.
refused(Node, Kind, Why) ->
    count({Node, Kind, refused}),
    Short = bounded(Why),
    _ = catch_badarg(fun() -> ets:insert(?TAB, {{Node, last_refused}, {Kind, Short}}) end),
    log(Node, "seccomp_dist: refused ~p from ~p: ~0tp", [Kind, Node, Short]).

%% @doc Count and log a malformed packet (the connection is then closed).
-spec malformed(node(), term()) -> ok.
malformed(Node, Why) ->
    count({Node, malformed, refused}),
    log(Node, "seccomp_dist: malformed packet from ~p (~0tp), disconnecting", [Node, bounded(Why)]).

%% @doc `Term' if it is small, else a short printed summary of it: what a
%% peer sent is kept and logged only in a bounded size.
-spec bounded(term()) -> term().
bounded(Term) ->
    case erts_debug:flat_size(Term) =< ?SMALL_WORDS of
        true -> Term;
        false ->
            Text = unicode:characters_to_binary(io_lib:format("~0tP", [Term, 8])),
            case byte_size(Text) =< ?SUMMARY_BYTES of
                true -> Text;
                false -> <<(binary:part(Text, 0, ?SUMMARY_BYTES))/binary, "...">>
            end
    end.

%% @doc Per node, how many packets of each kind were accepted and refused,
%% and the last refusal.
-spec stats() -> #{node() => #{{atom(), accepted | refused} | last_refused => term()}}.
stats() ->
    try ets:tab2list(?TAB) of
        Rows -> lists:foldl(fun({{Node, Kind, Verdict}, N}, Acc) -> put_stat(Node, {Kind, Verdict}, N, Acc);
                               ({{Node, last_refused}, What}, Acc) -> put_stat(Node, last_refused, What, Acc);
                               (_, Acc) -> Acc
                            end, #{}, Rows)
    catch error:badarg -> #{}
    end.

put_stat(Node, Key, Value, Acc) ->
    maps:update_with(Node, fun(M) -> M#{Key => Value} end, #{Key => Value}, Acc).

count(Key) ->
    _ = catch_badarg(fun() -> ets:update_counter(?TAB, Key, 1, {Key, 0}) end),
    ok.

log(Node, Format, Args) ->
    Second = erlang:monotonic_time(second),
    Key = {Node, log},
    N = case catch_badarg(fun() -> ets:lookup(?TAB, Key) end) of
            [{Key, Second, Count}] -> Count + 1;
            _ -> 1
        end,
    _ = catch_badarg(fun() -> ets:insert(?TAB, {Key, Second, N}) end),
    if
        N =< ?LOGS_PER_SECOND -> logger:warning(Format, Args, ?DOMAIN);
        N =:= ?LOGS_PER_SECOND + 1 ->
            logger:warning("seccomp_dist: more refusals from ~p this second, not logged (see stats/0)",
                           [Node], ?DOMAIN);
        true -> ok
    end.

%% The table is gone only while distribution is being stopped.
catch_badarg(F) ->
    try F() catch error:badarg -> undefined end.
