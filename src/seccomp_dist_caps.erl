%% @doc What a peer node was given: the local pids and references (aliases)
%% this node has shown it, in any packet it sent to it (a pid in a message, a
%% spawn reply naming the process its request created, the sender of a
%% monitor or link). A peer may address a local process or alias by pid or
%% reference only if it holds it.
%%
%% One table per connection: the sender adds, the receiver looks up. The
%% table is bounded: entries are kept in generations of `?GENERATION'
%% entries; when a generation is full, entries older than the previous one
%% are dropped, except pids of processes that are still alive.
-module(seccomp_dist_caps).

-export([new/0, show/2, holds/2, table/1]).
-export_type([caps/0]).

-define(GENERATION, 100000).

-record(caps, {tab :: ets:tid(), node_name :: binary(), gen = 0 :: non_neg_integer(),
               count = 0 :: non_neg_integer()}).
-opaque caps() :: #caps{}.

%% @doc A fresh table, owned by the calling process (the connection's sender).
-spec new() -> caps().
new() ->
    #caps{tab = ets:new(seccomp_dist_caps, [set, public, {read_concurrency, true}]),
          node_name = atom_to_binary(node(), utf8)}.

%% @doc The table the receiver looks things up in.
-spec table(caps()) -> ets:tid().
table(#caps{tab = Tab}) -> Tab.

%% @doc Record what the outgoing packet `Data' (a pass-through packet, as
%% `erlang:dist_ctrl_get_data/1' returns it) shows the peer. A packet that
%% does not contain this node's name names none of its pids or references.
-spec show(iodata(), caps()) -> caps().
show(Data, #caps{node_name = Name} = Caps) ->
    case mentions(Data, Name) of
        false -> Caps;
        true ->
            case iolist_to_binary(Data) of
                <<112, Terms/binary>> -> add(seccomp_dist_etf:local_terms(Terms, Name), Caps);
                _ -> Caps
            end
    end.

mentions(Bin, Name) when is_binary(Bin) -> binary:match(Bin, Name) =/= nomatch;
mentions([H | T], Name) -> mentions(H, Name) orelse mentions(T, Name);
mentions([], _Name) -> false.

add([], Caps) -> Caps;
add(Items, #caps{tab = Tab, gen = Gen, count = Count} = Caps) ->
    true = ets:insert(Tab, [{X, Gen} || X <- Items]),
    case Count + length(Items) of
        N when N >= ?GENERATION -> next_generation(Caps);
        N -> Caps#caps{count = N}
    end.

next_generation(#caps{tab = Tab, gen = Gen} = Caps) ->
    Old = Gen - 1,
    Drop = ets:foldl(fun({X, G}, Acc) when G =< Old ->
                             case is_pid(X) andalso is_process_alive(X) of
                                 true -> ets:insert(Tab, {X, Gen}), Acc;
                                 false -> [X | Acc]
                             end;
                        (_, Acc) -> Acc
                     end, [], Tab),
    lists:foreach(fun(X) -> ets:delete(Tab, X) end, Drop),
    Caps#caps{gen = Gen + 1, count = 0}.

%% @doc Whether the peer was shown `X'.
-spec holds(ets:tid(), pid() | reference()) -> boolean().
holds(Tab, X) -> ets:member(Tab, X).
