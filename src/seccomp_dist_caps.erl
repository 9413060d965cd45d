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

-export([new/0, show/2, holds/2, table/1, monitor_fired/2]).
-export_type([caps/0]).

-define(GENERATION, 100000).
%% The bytes of a packet read for a monitor's reference: more than a
%% monitor's or a spawn request's control term takes.
-define(CONTROL_BYTES, 4096).

-record(caps, {tab :: ets:tid(), node_name :: binary(), pattern :: binary:cp(), gen = 0 :: non_neg_integer(),
               count = 0 :: non_neg_integer(), last = [] :: [pid() | reference()]}).
-opaque caps() :: #caps{}.

%% @doc A fresh table, owned by the calling process (the connection's sender).
-spec new() -> caps().
new() ->
    Name = atom_to_binary(node(), utf8),
    #caps{tab = ets:new(seccomp_dist_caps, [set, public, {read_concurrency, true}]),
          node_name = Name, pattern = binary:compile_pattern(Name)}.

%% @doc The table the receiver looks things up in.
-spec table(caps()) -> ets:tid().
table(#caps{tab = Tab}) -> Tab.

%% @doc Record what the outgoing packet `Data' (a pass-through packet, as
%% `erlang:dist_ctrl_get_data/1' returns it) shows the peer. A packet that
%% does not contain this node's name names none of its pids or references.
-spec show(iodata(), caps()) -> caps().
show(Data, #caps{node_name = Name, pattern = Pattern, tab = Tab} = Caps) ->
    monitors(Data, Tab),
    case mentions(Data, Pattern) of
        false -> Caps;
        true -> add(shown(Data, Name, Pattern), Caps)
    end.

%% The monitors local processes set up on the peer's processes (`MONITOR_P',
%% 19, and spawn requests, 29 and 30, whose request id is the reference of
%% the monitor one asks for; the peer's spawn reply says whether it was
%% set up) are recorded until the peer reports them fired ({@link
%% monitor_fired/2}) or a local process takes them down (`DEMONITOR_P',
%% 20): only those may fire. They outlive generations. The operation is
%% read from the packet's first bytes, and only for these the control term
%% from the first `?CONTROL_BYTES', whatever pieces the runtime hands the
%% packet over in (a spawn request's arguments follow it).
monitors(Data, Tab) ->
    case prefix(Data, 6) of
        <<112, 131, 104, _Arity, 97, Op>> when Op =:= 19; Op =:= 20; Op =:= 29; Op =:= 30 ->
            <<112, Ctl/binary>> = prefix(Data, ?CONTROL_BYTES),
            monitor_op(Ctl, Tab);
        _ ->
            ok
    end.

%% At most the first `N' bytes of an iolist, without flattening the rest.
prefix(Data, N) ->
    {Taken, _Left} = take(Data, N, []),
    iolist_to_binary(lists:reverse(Taken)).

%% The pieces taken (last first) and the bytes still wanted.
take(_Data, 0, Acc) -> {Acc, 0};
take(B, N, Acc) when is_binary(B) ->
    Size = min(N, byte_size(B)),
    {[binary:part(B, 0, Size) | Acc], N - Size};
take(Byte, N, Acc) when is_integer(Byte) -> {[Byte | Acc], N - 1};
take([], N, Acc) -> {Acc, N};
take([H | T], N, Acc) ->
    {Acc1, N1} = take(H, N, Acc),
    take(T, N1, Acc1).

monitor_op(Ctl, Tab) ->
    try binary_to_term(Ctl, [used, safe]) of
        {{19, _From, _To, Ref}, _} -> monitored(Ref, Tab);
        {{20, _From, _To, Ref}, _} -> true = ets:delete(Tab, {monitor, Ref}), ok;
        {{29, ReqId, _From, _GL, _MFA, _Opts}, _} -> monitored(ReqId, Tab);
        {{30, ReqId, _From, _GL, _MFA, _Opts, _Token}, _} -> monitored(ReqId, Tab);
        _ -> ok
    catch
        error:badarg -> ok
    end.

monitored(Ref, Tab) ->
    true = ets:insert(Tab, {{monitor, Ref}, monitor}),
    ok.

%% @doc Whether `Ref' names a monitor a local process set up on the peer,
%% which now counts as fired.
-spec monitor_fired(ets:tid(), term()) -> boolean().
monitor_fired(Tab, Ref) -> ets:take(Tab, {monitor, Ref}) =/= [].

%% The runtime hands a small packet over as `[<<112>>, Control | Payload]':
%% the control term (the sender of a message, most often) is read alone,
%% and the payload only when it holds the node's name. Any other shape (or a
%% first piece that is not whole terms) is read whole.
shown([<<112>>, Ctl | Payload] = Data, Name, Pattern) when is_binary(Ctl) ->
    case mentions(Payload, Pattern) of
        false ->
            case seccomp_dist_etf:local_terms(Ctl, Name) of
                {ok, Locals} -> Locals;
                error -> shown_in(Data, Name)
            end;
        true ->
            shown_in(Data, Name)
    end;
shown(Data, Name, _Pattern) ->
    shown_in(Data, Name).

shown_in(Data, Name) ->
    case iolist_to_binary(Data) of
        <<112, Terms/binary>> ->
            case seccomp_dist_etf:local_terms(Terms, Name) of
                {ok, Locals} -> Locals;
                error -> []
            end;
        _ -> []
    end.

mentions(Bin, Pattern) when is_binary(Bin) -> binary:match(Bin, Pattern) =/= nomatch;
mentions([H | T], Pattern) -> mentions(H, Pattern) orelse mentions(T, Pattern);
mentions([], _Pattern) -> false.

add([], Caps) -> Caps;
%% The same items as last time (a process sending message after message)
%% are in the table already, in this generation.
add(Items, #caps{last = Items} = Caps) -> Caps;
add(Items, #caps{tab = Tab, gen = Gen, count = Count} = Caps) ->
    true = ets:insert(Tab, [{X, Gen} || X <- Items]),
    case Count + length(Items) of
        N when N >= ?GENERATION -> (next_generation(Caps))#caps{last = []};
        N -> Caps#caps{count = N, last = Items}
    end.

next_generation(#caps{tab = Tab, gen = Gen} = Caps) ->
    Old = Gen - 1,
    Drop = ets:foldl(fun({{monitor, _}, monitor}, Acc) -> Acc;
                        ({X, G}, Acc) when G =< Old ->
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
