%% @doc The two processes of one `seccomp' connection.
%%
%% The controller owns the socket during the handshake and serves
%% `dist_util''s requests; afterwards it is the sender: it hands the VM's
%% outgoing data to the socket and records in the connection's capability
%% table what each packet shows the peer. The receiver owns the socket after
%% the handshake and checks every incoming packet with
%% {@link seccomp_dist_filter} before the VM sees it.
-module(seccomp_dist_conn).

-export([start_controller/1, request/2]).
%% process entry points
-export([controller/1, receiver/5]).

-include_lib("kernel/include/net_address.hrl").
-include_lib("kernel/include/dist.hrl").

-record(rx, {socket :: inet:socket(), node :: node(), dhandle :: term(), ctrl :: pid(),
             policy :: term(), ctx :: seccomp_dist_filter:context(),
             accepted = #{} :: #{atom() => pos_integer()}}).

%% How long a node claiming a connected node's name waits for that
%% connection to go down before it is refused.
-define(ALIVE_WAIT_MS, 3000).
-define(ALIVE_POLL_MS, 20).
%% Packets the socket delivers before the receiver asks again (and flushes
%% its counters).
-define(ACTIVE_N, 64).
%% Both processes handle packet after packet: a heap that fits many of them
%% makes collections rare (binaries of large packets are off the heap).
-define(HEAP_OPTS, [{message_queue_data, off_heap}, {min_heap_size, 16384}, {fullsweep_after, 20}]).

%% @doc A controller for a connected socket.
-spec start_controller(inet:socket()) -> pid().
start_controller(Socket) ->
    Ctrl = spawn_opt(?MODULE, controller, [Socket], [{priority, max} | ?HEAP_OPTS]),
    ok = gen_tcp:controlling_process(Socket, Ctrl),
    Ctrl.

%% @doc A synchronous request to a connection's controller.
-spec request(pid(), term()) -> term().
request(Ctrl, Req) ->
    Ref = monitor(process, Ctrl),
    Ctrl ! {seccomp_dist_req, self(), Ref, Req},
    receive
        {Ref, Reply} -> demonitor(Ref, [flush]), Reply;
        {'DOWN', Ref, process, Ctrl, Why} -> exit({controller_down, Why})
    end.

%%% Controller, then sender -------------------------------------------------------

%% @private
controller(Socket) ->
    receive
        {seccomp_dist_req, From, Ref, {handshake_complete, Node, DHandle}} ->
            Caps = seccomp_dist_caps:new(),
            Receiver = spawn_opt(?MODULE, receiver,
                                 [self(), Socket, Node, DHandle, seccomp_dist_caps:table(Caps)],
                                 [link | ?HEAP_OPTS]),
            ok = gen_tcp:controlling_process(Socket, Receiver),
            ok = erlang:dist_ctrl_input_handler(DHandle, Receiver),
            Receiver ! go,
            From ! {Ref, ok},
            process_flag(priority, normal),
            erlang:dist_ctrl_get_data_notification(DHandle),
            sender(Socket, DHandle, Caps);
        {seccomp_dist_req, From, Ref, Req} ->
            From ! {Ref, handshake_request(Socket, Req)},
            controller(Socket);
        tick ->
            controller(Socket);
        {tcp_closed, Socket} ->
            exit(connection_closed)
    end.

handshake_request(_Socket, {supervisor, Pid}) -> link(Pid), ok;
%% A node connecting under the name of a node that is connected is told
%% `alive', and answering `true' would drop the connection of the node
%% whose name it claims. So `alive' is said only once that connection is
%% down (a node that restarted before its old connection was seen down);
%% while it stays up, this connection is refused.
handshake_request(Socket, {send, "salive"}) ->
    case old_connection_gone(get(claimed_name)) of
        true -> gen_tcp:send(Socket, "salive");
        false -> {error, name_already_connected}
    end;
handshake_request(Socket, {send, Packet}) -> gen_tcp:send(Socket, Packet);
%% dist_util reads handshake messages as lists.
handshake_request(Socket, {recv, Len, Timeout}) ->
    case gen_tcp:recv(Socket, Len, Timeout) of
        {ok, Bin} when is_binary(Bin) ->
            case first_packet(Bin) of
                ok -> {ok, binary_to_list(Bin)};
                atom_budget -> {error, atom_budget}
            end;
        Other -> Other
    end;
handshake_request(Socket, nodeup_opts) ->
    inet:setopts(Socket, [{active, false}, {packet, 4}, {nodelay, true} | buffer_opts()]);
handshake_request(Socket, {address, Node, Family}) ->
    {ok, Address} = inet:peername(Socket),
    [_Name, Host] = string:split(atom_to_list(Node), "@"),
    #net_address{address = Address, host = Host, protocol = tcp, family = Family};
handshake_request(Socket, Req) ->
    socket_request(Socket, Req).

%% The first packet a connecting node sends (`send_name', new and old
%% forms) gives its name, which the handshake makes an atom of before the
%% node proves it holds the cookie: a new name is charged to the atom budget
%% (see {@link seccomp_dist_budget:charge_name/1}). Only the first packet
%% received is a name (the connecting side's first is a status).
first_packet(Bin) ->
    case put(first_packet_seen, true) of
        undefined -> claim_name(Bin);
        true -> ok
    end.

claim_name(<<$N, Flags:64, _Creation:32, Len:16, Name:Len/binary>>) ->
    put(claimed_name, Name),
    seccomp_dist_budget:charge_name(case Flags band ?DFLAG_NAME_ME of
                                        0 -> Name;
                                        _ -> dynamic
                                    end);
claim_name(<<$n, _Version:16, _Flags:32, Name/binary>>) ->
    put(claimed_name, Name),
    seccomp_dist_budget:charge_name(Name);
claim_name(_) ->
    ok.

old_connection_gone(Name) when is_binary(Name) ->
    try binary_to_existing_atom(Name, utf8) of
        Node -> wait_until_not_up(Node, ?ALIVE_WAIT_MS div ?ALIVE_POLL_MS)
    catch error:badarg -> true
    end;
old_connection_gone(_) -> false.

%% net_kernel keeps the old connection `up_pending' until it goes down.
wait_until_not_up(Node, Polls) ->
    case net_kernel:node_info(Node, state) of
        {ok, up_pending} when Polls > 0 ->
            timer:sleep(?ALIVE_POLL_MS),
            wait_until_not_up(Node, Polls - 1);
        {ok, up_pending} -> false;
        _ -> true
    end.

%% The driver's default user-space buffer is small: every large packet would
%% be reassembled in many steps.
buffer_opts() -> [{buffer, 256 * 1024}, {high_watermark, 1024 * 1024}, {low_watermark, 512 * 1024}].

socket_request(Socket, getstat) ->
    case inet:getstat(Socket, [recv_cnt, send_cnt, send_pend]) of
        {ok, Stats} ->
            {ok, proplists:get_value(recv_cnt, Stats, 0), proplists:get_value(send_cnt, Stats, 0),
             proplists:get_value(send_pend, Stats, 0)};
        Error -> Error
    end;
socket_request(Socket, {setopts, Opts}) ->
    case [O || O <- Opts, not tunable(O)] of
        [] -> inet:setopts(Socket, Opts);
        Fixed -> {error, {not_settable, Fixed}}
    end;
socket_request(Socket, {getopts, Opts}) -> inet:getopts(Socket, Opts);
socket_request(_Socket, _Other) -> {error, unsupported}.

%% The carrier's framing and ownership of the socket are not the caller's to change.
tunable({Key, _}) -> not lists:member(Key, [active, packet, packet_size, mode, header, deliver, exit_on_close]);
tunable(_) -> false.

sender(Socket, DHandle, Caps) ->
    receive
        dist_data ->
            sender(Socket, DHandle, send_all(Socket, DHandle, Caps));
        tick ->
            send_or_die(Socket, <<>>),
            sender(Socket, DHandle, Caps);
        {inject, Packet} ->
            send_or_die(Socket, Packet),
            sender(Socket, DHandle, Caps);
        {seccomp_dist_req, From, Ref, Req} ->
            From ! {Ref, socket_request(Socket, Req)},
            sender(Socket, DHandle, Caps);
        _ ->
            sender(Socket, DHandle, Caps)
    end.

%% What a packet shows the peer is recorded before the peer can answer it.
%% Sending and receiving are two processes: while a send waits for a busy
%% socket (a peer that does not read), the receiver goes on reading, so two
%% nodes sending to each other never wait on each other.
send_all(Socket, DHandle, Caps) ->
    case erlang:dist_ctrl_get_data(DHandle) of
        none ->
            erlang:dist_ctrl_get_data_notification(DHandle),
            Caps;
        Data ->
            Caps1 = seccomp_dist_caps:show(Data, Caps),
            send_or_die(Socket, Data),
            send_all(Socket, DHandle, Caps1)
    end.

send_or_die(Socket, Data) ->
    case gen_tcp:send(Socket, Data) of
        ok -> ok;
        {error, Why} -> exit({send_error, Why})
    end.

%%% Receiver ------------------------------------------------------------------------

%% @private
receiver(Ctrl, Socket, Node, DHandle, Caps) ->
    link(Ctrl),
    receive go -> ok end,
    Policy = seccomp_dist_policy:current(),
    Rules = seccomp_dist_policy:rules_for(Node, Policy),
    %% Larger packets close the connection before they are read.
    ok = inet:setopts(Socket, [{active, ?ACTIVE_N}, {packet_size, maps:get(max_message_bytes, Rules)}]),
    receive_loop(#rx{socket = Socket, node = Node, dhandle = DHandle, ctrl = Ctrl, policy = Policy,
                     ctx = seccomp_dist_filter:context(Node, Rules, Caps)}).

receive_loop(#rx{socket = Socket} = S) ->
    receive
        {tcp, Socket, Packet} ->
            receive_loop(packet(Packet, current(S)));
        {tcp_passive, Socket} ->
            ok = inet:setopts(Socket, [{active, ?ACTIVE_N}]),
            receive_loop(flush(S));
        {tcp_closed, Socket} ->
            exit(connection_closed);
        {tcp_error, Socket, emsgsize} ->
            seccomp_dist_stats:malformed(S#rx.node, {larger_than, max_message_bytes(S)}),
            exit({seccomp_dist_malformed, too_large});
        {tcp_error, Socket, Why} ->
            exit({tcp_error, Why});
        _ ->
            receive_loop(S)
    end.

flush(#rx{node = Node, accepted = Accepted} = S) ->
    maps:foreach(fun(Kind, N) -> seccomp_dist_stats:accepted(Node, Kind, N) end, Accepted),
    S#rx{accepted = #{}}.

max_message_bytes(#rx{ctx = #{rules := #{max_message_bytes := Max}}}) -> Max.

%% The peer's rules are worked out again only when `set_policy/1' put a new
%% policy (persistent_term hands back the very same term until then). The
%% atom budget spent so far stays spent.
current(#rx{policy = Policy} = S) ->
    case seccomp_dist_policy:current() of
        Policy -> S;
        New ->
            #rx{node = Node, ctx = Ctx} = S,
            Rules = seccomp_dist_policy:rules_for(Node, New),
            S#rx{policy = New, ctx = Ctx#{rules := Rules}}
    end.

packet(Packet, #rx{node = Node, dhandle = DHandle, ctx = Ctx} = S) ->
    {Decision, Atoms} = seccomp_dist_filter:decide(Packet, Ctx),
    S1 = S#rx{ctx = Ctx#{atoms_left := maps:get(atoms_left, Ctx) - Atoms}},
    case Decision of
        {accept, Kind, _} ->
            erlang:dist_ctrl_put_data(DHandle, Packet),
            S1#rx{accepted = maps:update_with(Kind, fun(N) -> N + 1 end, 1, S1#rx.accepted)};
        {refuse, Kind, Why, Reply} ->
            S2 = flush(S1),
            seccomp_dist_stats:refused(Node, Kind, Why),
            Reply =:= none orelse (S#rx.ctrl ! {inject, Reply}),
            case maps:get(on_violation, maps:get(rules, Ctx)) of
                disconnect -> exit({seccomp_dist_refused, Kind});
                drop -> S2
            end;
        {malformed, Why} ->
            _ = flush(S1),
            seccomp_dist_stats:malformed(Node, Why),
            exit({seccomp_dist_malformed, seccomp_dist_stats:bounded(Why)})
    end.
