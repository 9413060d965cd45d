%% @doc The two processes of one `seccomp' connection.
%%
%% A connection's socket is `{Transport, Socket}': the transport module
%% ({@link seccomp_dist_tcp}, {@link seccomp_dist_tls}) sends, receives and
%% names the socket's messages; the carrier's work is the same over each.
%%
%% The controller owns the socket during the handshake and serves
%% `dist_util''s requests. Over TCP, the connection then moves to a port of
%% the carrier's driver ({@link seccomp_dist_port}), which the runtime
%% writes to and reads from directly; the controller serves `dist_util''s
%% ticks and statistics through it, and the receiver, the port's owner,
%% judges the packets the driver does not deliver on its own. Over a
%% transport the driver cannot read (TLS), the controller becomes the
%% sender: it hands the VM's outgoing data to the socket and records in the
%% connection's state what each packet shows the peer; the receiver owns the
%% socket and checks every incoming packet with {@link seccomp_dist_filter}
%% before the VM sees it.
-module(seccomp_dist_conn).

-export([start_controller/3, supervise/2, request/2]).
%% process entry points
-export([controller/3, receiver/4]).

-type sock() :: {module(), term()}.

-include_lib("kernel/include/net_address.hrl").
-include_lib("kernel/include/dist.hrl").

-record(rx, {socket :: sock() | undefined, tags :: tuple() | undefined, node :: node(),
             out :: {dhandle, term()} | {port, port()}, ctrl :: pid(), caps :: seccomp_dist_caps:conn(),
             policy :: term(), ctx :: seccomp_dist_filter:context(),
             accepted = #{} :: #{atom() => pos_integer()},
             in = {head, <<>>} :: framing()}).

%% Where the receiver is in the stream of `<<Length:32, Packet/binary>>'
%% frames: reading a header (with the bytes of it read so far), reading a
%% packet (bytes still to come, pieces read so far, last first), or
%% discarding a packet larger than `max_message_bytes' (its length, bytes
%% still to come, and its first bytes, which name its sender).
-type framing() :: {head, binary()}
                 | {body, pos_integer(), [binary()]}
                 | {skip, pos_integer(), non_neg_integer(), binary()}.

%% How long a node claiming a connected node's name waits for that
%% connection to go down before it is refused.
-define(ALIVE_WAIT_MS, 3000).
-define(ALIVE_POLL_MS, 20).
%% Packets the socket delivers before the receiver asks again (and flushes
%% its counters).
-define(ACTIVE_N, 64).
%% Over TLS the receiver and the sender handle packet after packet: a heap
%% that fits many of them makes collections rare (binaries of large packets
%% are off the heap). A controller takes it only when it becomes a sender:
%% before its handshake completes, a connection costs little.
-define(HEAP_OPTS, [{message_queue_data, off_heap}, {fullsweep_after, 20}]).
-define(PACKETS_HEAP_WORDS, 16384).
%% A packet at least this large is followed by a collection of the
%% receiver's heap.
-define(COLLECT_AFTER_BYTES, 1048576).
%% The most bytes of queued packets the sender joins into one write.
-define(BATCH_BYTES, 65536).
%% Of a packet larger than `max_message_bytes', the bytes kept to find its
%% sender in its control term.
-define(HEAD_BYTES, 65536).
%% Answers to refused requests waiting for the sender (over TLS) beyond
%% which more are dropped.
-define(INJECT_QUEUE, 1024).
%% Packets waiting for the sender (over TLS) beyond which the peer is taken
%% not to read: allowed calls that would start a process are refused.
-define(BACKED_UP_PACKETS, 1024).

%% @doc A controller for a connected TCP socket, which `Transport' takes
%% over (as the side that accepted it, `server', or that connected to a
%% node on `Host') before the controller serves its first request.
-spec start_controller(module(), server | {client, string()}, inet:socket()) -> pid().
start_controller(Transport, Role, TcpSocket) ->
    Ctrl = spawn_opt(?MODULE, controller, [Transport, Role, TcpSocket], [{priority, max} | ?HEAP_OPTS]),
    ok = gen_tcp:controlling_process(TcpSocket, Ctrl),
    Ctrl.

%% @doc Link the controller to the process that runs the connection's
%% handshake, without waiting for it (a TLS controller is busy with the TLS
%% handshake first; the acceptor must not wait for a slow peer).
-spec supervise(pid(), pid()) -> ok.
supervise(Ctrl, Pid) ->
    Ctrl ! {seccomp_dist_supervisor, Pid},
    ok.

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
controller(Transport, Role, TcpSocket) ->
    put(role, case Role of server -> server; {client, _} -> client end),
    case Transport:upgrade(Role, TcpSocket) of
        {ok, Socket} -> controller({Transport, Socket});
        {error, Why} -> exit({seccomp_dist_transport, Why})
    end.

controller(Socket) ->
    controller(Socket, none).

%% `Driven': `none', or the driver port the connection moves to, with its
%% state and the bytes the socket had already read.
controller({Transport, S} = Socket, Driven) ->
    Closed = element(2, Transport:tags()),
    receive
        {seccomp_dist_req, From, Ref, nodeup_opts} ->
            ok = call(Socket, setopts, [nodeup_opts(Transport:driven())]),
            Driven1 = case Driven =:= none andalso Transport:driven() of
                          true -> drive(Socket);
                          false -> Driven
                      end,
            From ! {Ref, ok},
            controller(Socket, Driven1);
        {seccomp_dist_req, From, Ref, low_level} ->
            From ! {Ref, {ok, case Driven of
                                  none -> self();
                                  {Port, _Caps, _Buffered} -> Port
                              end}},
            controller(Socket, Driven);
        {seccomp_dist_req, From, Ref, {handshake_complete, Node, DHandle}} ->
            process_flag(priority, normal),
            handshake_complete(Socket, Driven, Node, DHandle, fun() -> From ! {Ref, ok}, ok end);
        {seccomp_dist_req, From, Ref, Req} ->
            From ! {Ref, handshake_request(Socket, Req)},
            controller(Socket, Driven);
        {seccomp_dist_supervisor, Pid} ->
            link(Pid),
            controller(Socket, Driven);
        tick ->
            controller(Socket, Driven);
        {Closed, S} ->
            exit(connection_closed)
    end.

%% The connection moves to a driver port before `setnode' makes it the
%% distribution controller. The socket keeps its owner (the controller), so
%% it closes when the controller goes; the bytes its driver had read past
%% the handshake go to the port.
drive({_Transport, S} = Socket) ->
    Buffered = case call(Socket, recv, [0, 0]) of
                   {ok, Bytes} -> Bytes;
                   {error, timeout} -> <<>>
               end,
    Caps = seccomp_dist_caps:new(),
    {seccomp_dist_port:open(S, Caps, send_timeout_ms()), Caps, Buffered}.

handshake_complete(Socket, none, Node, DHandle, Reply) ->
    Caps = seccomp_dist_caps:new(),
    ok = seccomp_dist_caps:peer(Caps, Node),
    Receiver = spawn_opt(?MODULE, receiver, [self(), {socket, Socket, DHandle}, Node, Caps],
                         [link, {min_heap_size, ?PACKETS_HEAP_WORDS} | ?HEAP_OPTS]),
    ok = call(Socket, controlling_process, [Receiver]),
    ok = erlang:dist_ctrl_input_handler(DHandle, Receiver),
    Receiver ! go,
    ok = Reply(),
    _ = process_flag(min_heap_size, ?PACKETS_HEAP_WORDS),
    _ = erlang:dist_ctrl_set_opt(DHandle, get_size, true),
    erlang:dist_ctrl_get_data_notification(DHandle),
    sender(Socket, DHandle, Caps);
handshake_complete(Socket, {Port, Caps, Buffered}, Node, _DHandle, Reply) ->
    ok = seccomp_dist_caps:peer(Caps, Node),
    %% (the driver delivers most packets itself: the receiver's heap grows
    %% only with what it judges)
    Receiver = spawn_opt(?MODULE, receiver, [self(), {port, Port, Buffered}, Node, Caps], [link | ?HEAP_OPTS]),
    true = erlang:port_connect(Port, Receiver),
    Receiver ! go,
    ok = Reply(),
    port_controller(Socket, Port).

%% The controller of a driven connection serves `dist_util': ticks and
%% statistics go to the port, options to the socket (the same socket).
port_controller(Socket, Port) ->
    receive
        tick ->
            ok = seccomp_dist_port:tick(Port);
        {seccomp_dist_req, From, Ref, getstat} ->
            From ! {Ref, seccomp_dist_port:getstat(Port)};
        {seccomp_dist_req, From, Ref, Req} ->
            From ! {Ref, socket_request(Socket, Req)};
        _ ->
            ok
    end,
    port_controller(Socket, Port).

%% `Function' of the socket's transport: `gen_tcp' and `inet', or `ssl'.
call({Transport, S}, Function, Args) ->
    {SocketModule, OptionModule} = Transport:modules(),
    Module = case lists:member(Function, [send, recv, controlling_process]) of
                 true -> SocketModule;
                 false -> OptionModule
             end,
    apply(Module, Function, [S | Args]).

%% A node connecting under the name of a node that is connected is told
%% `alive', and answering `true' would drop the connection of the node
%% whose name it claims. So `alive' is said only once that connection is
%% down (a node that restarted before its old connection was seen down);
%% while it stays up, this connection is refused.
handshake_request(Socket, {send, "salive"}) ->
    case old_connection_gone(get(claimed_name)) of
        true -> call(Socket, send, ["salive"]);
        false -> {error, name_already_connected}
    end;
handshake_request(Socket, {send, Packet}) -> call(Socket, send, [Packet]);
%% dist_util reads handshake messages as lists.
handshake_request(Socket, {recv, Len, Timeout}) ->
    case call(Socket, recv, [Len, Timeout]) of
        {ok, Bin} when is_binary(Bin) ->
            case first_packet(Bin, Socket) of
                ok -> {ok, binary_to_list(Bin)};
                Refused -> {error, Refused}
            end;
        Other -> Other
    end;
handshake_request(Socket, {address, Node, Family, Protocol}) ->
    {ok, Address} = call(Socket, peername, []),
    [_Name, Host] = string:split(atom_to_list(Node), "@"),
    #net_address{address = Address, host = Host, protocol = Protocol, family = Family};
handshake_request(Socket, Req) ->
    socket_request(Socket, Req).

%% The first packet a connecting node sends (`send_name', new and old
%% forms) gives its name, which the handshake makes an atom of before the
%% node proves it holds the cookie: a new name is charged to the atom budget
%% (see {@link seccomp_dist_budget:charge_name/1}). Its host must be one
%% the transport proves the node is on (TLS: the host its certificate
%% names). The name is read exactly as `dist_util' reads it (the first
%% `Len' bytes of the new form, whatever follows them; every byte after the
%% old form's header), each byte a character; a first packet it would not
%% take for a name is refused. Only the accepting side's first packet is a
%% name (the connecting side's first is a status).
first_packet(Bin, Socket) ->
    case {get(role), put(first_packet_seen, true)} of
        {server, undefined} -> claim_name(Bin, Socket);
        _ -> ok
    end.

claim_name(<<$N, Flags:64, _Creation:32, Len:16, Name:Len/binary, _Residue/binary>>, Socket) ->
    proven_name(Name, Socket, case Flags band ?DFLAG_NAME_ME of
                                  0 -> Name;
                                  _ -> dynamic
                              end);
claim_name(<<$n, _Version:16, _Flags:32, Name/binary>>, Socket) ->
    proven_name(Name, Socket, Name);
claim_name(_, _Socket) ->
    not_a_name.

%% A dynamic name is the host alone.
proven_name(Name, Socket, Charged) ->
    put(claimed_name, Name),
    Host = lists:last(string:split(Name, "@")),
    {Transport, S} = Socket,
    case Transport:verify_host(S, binary_to_list(Host)) of
        ok -> seccomp_dist_budget:charge_name(Charged);
        {error, Why} -> {host_not_proven, Why}
    end.

old_connection_gone(Name) when is_binary(Name) ->
    try binary_to_existing_atom(Name, latin1) of
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

%% After the handshake the carrier frames packets itself (`{packet, 4}' in
%% the socket would close the connection on a packet over its limit).
%% The socket's default user-space buffer is small: every large packet would
%% be reassembled in many steps. A driven connection's socket is read and
%% written by the carrier's driver, which keeps buffers of its own.
nodeup_opts(Driven) ->
    [{active, false}, {packet, raw}, {nodelay, true}, {send_timeout, send_timeout_ms()}, {send_timeout_close, true}
     | case Driven of
           true -> [];
           false -> buffer_opts()
       end].

buffer_opts() -> [{buffer, 256 * 1024}, {high_watermark, 1024 * 1024}, {low_watermark, 512 * 1024}].

%% A peer that stops reading fills the socket, and every local process that
%% sends to it then waits (the runtime suspends senders to a busy
%% connection), kernel servers included: a peer can make `global' or `rex'
%% answer it, then read nothing. A send that cannot go on for a quarter of
%% `net_ticktime' (when ticks are sent; at least two seconds) closes the
%% connection, as a peer that sends nothing for `net_ticktime' is dropped.
%% (The configured `net_ticktime': asking net_kernel from a handshake could
%% wait for net_kernel, which may be waiting for the handshake.)
send_timeout_ms() ->
    Tick = case application:get_env(kernel, net_ticktime) of
               {ok, T} when is_integer(T), T > 0 -> T;
               _ -> 60
           end,
    max(2000, Tick * 1000 div 4).

socket_request(Socket, getstat) ->
    case call(Socket, getstat, [[recv_cnt, send_cnt, send_pend]]) of
        {ok, Stats} ->
            {ok, proplists:get_value(recv_cnt, Stats, 0), proplists:get_value(send_cnt, Stats, 0),
             proplists:get_value(send_pend, Stats, 0)};
        Error -> Error
    end;
socket_request(Socket, {setopts, Opts}) ->
    case [O || O <- Opts, not tunable(O)] of
        [] -> call(Socket, setopts, [Opts]);
        Fixed -> {error, {not_settable, Fixed}}
    end;
socket_request(Socket, {getopts, Opts}) -> call(Socket, getopts, [Opts]);
socket_request(_Socket, _Other) -> {error, unsupported}.

%% The carrier's framing and ownership of the socket are not the caller's to change.
tunable({Key, _}) -> not lists:member(Key, [active, packet, packet_size, mode, header, deliver, exit_on_close]);
tunable(_) -> false.

sender(Socket, DHandle, Caps) ->
    receive
        dist_data ->
            send_all(Socket, DHandle, Caps);
        tick ->
            send_or_die(Socket, <<0:32>>);
        {inject, Packet} ->
            send_or_die(Socket, [<<(byte_size(Packet)):32>>, Packet]);
        {seccomp_dist_req, From, Ref, Req} ->
            From ! {Ref, socket_request(Socket, Req)};
        _ ->
            ok
    end,
    sender(Socket, DHandle, Caps).

%% What a packet shows the peer is recorded before the peer can answer it.
%% Sending and receiving are two processes: while a send waits for a busy
%% socket (a peer that does not read), the receiver goes on reading, so two
%% nodes sending to each other never wait on each other. The packets queued
%% when the sender wakes go out in one write, up to `?BATCH_BYTES' each.
send_all(Socket, DHandle, Caps) ->
    case batch(DHandle, Caps, 0, []) of
        [] ->
            erlang:dist_ctrl_get_data_notification(DHandle);
        Batch ->
            send_or_die(Socket, lists:reverse(Batch)),
            send_all(Socket, DHandle, Caps)
    end.

batch(_DHandle, _Caps, Bytes, Batch) when Bytes >= ?BATCH_BYTES ->
    Batch;
batch(DHandle, Caps, Bytes, Batch) ->
    case erlang:dist_ctrl_get_data(DHandle) of
        none ->
            Batch;
        {Size, Data} ->
            ok = seccomp_dist_caps:show(Data, Caps),
            batch(DHandle, Caps, Bytes + Size + 4, [[<<Size:32>> | Data] | Batch])
    end.

send_or_die(Socket, Data) ->
    case call(Socket, send, [Data]) of
        ok -> ok;
        {error, Why} -> exit({send_error, Why})
    end.

%%% Receiver ------------------------------------------------------------------------

%% @private
receiver(Ctrl, Carrier, Node, Caps) ->
    link(Ctrl),
    receive go -> ok end,
    Policy = seccomp_dist_policy:current(),
    Rules = seccomp_dist_policy:rules_for(Node, Policy),
    Ctx0 = seccomp_dist_filter:context(Node, Rules, Caps),
    case Carrier of
        {socket, {Transport, _} = Socket, DHandle} ->
            ok = call(Socket, setopts, [[{active, ?ACTIVE_N}]]),
            Ctx = Ctx0#{backed_up => fun() -> backed_up(DHandle) end},
            receive_loop(#rx{node = Node, ctrl = Ctrl, caps = Caps, policy = Policy, ctx = Ctx,
                             socket = Socket, tags = Transport:tags(), out = {dhandle, DHandle}});
        {port, Port, Buffered} ->
            Ctx = Ctx0#{backed_up => fun() -> seccomp_dist_port:backed_up(Port) end},
            S1 = current(#rx{node = Node, ctrl = Ctrl, caps = Caps, policy = Policy, ctx = Ctx,
                             out = {port, Port}}),
            ok = seccomp_dist_port:enable(Port, Buffered),
            port_loop(S1)
    end.

%% Over TLS: whether packets wait for the sender (the peer is not reading).
backed_up(DHandle) ->
    {ok, _In, _Out, Pending} = erlang:dist_get_stat(DHandle),
    Pending > ?BACKED_UP_PACKETS.

receive_loop(#rx{socket = {_, Sock} = Socket, tags = {DataTag, ClosedTag, ErrorTag, PassiveTag}} = S) ->
    receive
        {DataTag, Sock, Data} ->
            receive_loop(input(Data, current(S)));
        {PassiveTag, Sock} ->
            ok = call(Socket, setopts, [[{active, ?ACTIVE_N}]]),
            receive_loop(flush(S));
        {ClosedTag, Sock} ->
            exit(connection_closed);
        {ErrorTag, Sock, Why} ->
            exit({socket_error, Why});
        _ ->
            receive_loop(S)
    end.

%% The receiver of a driven connection judges what the driver hands it.
port_loop(#rx{out = {port, Port}} = S) ->
    receive
        {Port, packet, Packet} ->
            port_loop(flush(packet(Packet, current(S))));
        {Port, too_large, Len, Head} ->
            port_loop(flush(too_large(Len, Head, current(S))));
        {Port, caps_full} ->
            ok = seccomp_dist_caps:rotate(S#rx.caps),
            port_loop(S);
        _ ->
            port_loop(S)
    end.

flush(#rx{node = Node, accepted = Accepted} = S) ->
    maps:foreach(fun(Kind, N) -> seccomp_dist_stats:accepted(Node, Kind, N) end, Accepted),
    S#rx{accepted = #{}}.

max_message_bytes(#rx{ctx = #{rules := #{max_message_bytes := Max}}}) -> Max.

%%% Framing ---------------------------------------------------------------------------

%% Bytes from the socket: whole packets go to the filter as they complete;
%% a packet is held (its pieces, then the packet) only up to
%% `max_message_bytes'. A larger one is read and thrown away piece by piece,
%% and its sender is told (see {@link too_large/3}).
input(Data, #rx{in = {head, <<>>}} = S) ->
    frames(Data, S);
%% A header split between reads: only its own bytes are joined (the read
%% may be a large binary).
input(Data, #rx{in = {head, Part}} = S) when byte_size(Part) + byte_size(Data) < 4 ->
    S#rx{in = {head, <<Part/binary, Data/binary>>}};
input(Data, #rx{in = {head, Part}} = S) ->
    Missing = 4 - byte_size(Part),
    <<End:Missing/binary, Rest/binary>> = Data,
    <<Len:32>> = <<Part/binary, End/binary>>,
    frame(Len, Rest, S);
input(Data, #rx{in = {body, Need, Pieces}} = S) when byte_size(Data) < Need ->
    S#rx{in = {body, Need - byte_size(Data), [Data | Pieces]}};
input(Data, #rx{in = {body, Need, Pieces}} = S) ->
    <<Last:Need/binary, More/binary>> = Data,
    Packet = iolist_to_binary(lists:reverse(Pieces, [Last])),
    frames(More, packet(Packet, S#rx{in = {head, <<>>}}));
input(Data, #rx{in = {skip, Len, Need, Head}} = S) ->
    Take = min(Need, byte_size(Data)),
    Head1 = case byte_size(Head) < ?HEAD_BYTES of
                true -> <<Head/binary, (binary:part(Data, 0, min(Take, ?HEAD_BYTES - byte_size(Head))))/binary>>;
                false -> Head
            end,
    case Take =:= Need of
        true ->
            <<_:Take/binary, More/binary>> = Data,
            frames(More, too_large(Len, Head1, S#rx{in = {head, <<>>}}));
        false ->
            S#rx{in = {skip, Len, Need - Take, Head1}}
    end.

frames(<<Len:32, Rest/binary>>, S) ->
    frame(Len, Rest, S);
frames(Part, S) ->
    S#rx{in = {head, Part}}.

%% A frame of `Len' bytes, of which `Rest' holds the first (and what follows).
frame(Len, Rest, S) ->
    case Len =< max_message_bytes(S) of
        true ->
            case Rest of
                <<Packet:Len/binary, More/binary>> -> frames(More, packet(Packet, S));
                _ -> S#rx{in = {body, Len - byte_size(Rest), [Rest]}}
            end;
        false ->
            input(Rest, S#rx{in = {skip, Len, Len, <<>>}})
    end.

%% A packet larger than `max_message_bytes' was read and discarded. Its
%% sender (a process of the peer named in the control term, read with the
%% runtime's `safe' decoder from the packet's first bytes) is told: a message
%% `{seccomp_dist_refused, ThisNode, {too_large, Bytes, Max}}' (when the
%% connection takes it at once: a peer that does not read what it is sent
%% gets no notes, and nothing here waits or piles up for it), or for a spawn
%% request a failed spawn reply (`system_limit'). The connection stays
%% unless the rules say `disconnect'.
too_large(Len, Head, #rx{node = Node} = S) ->
    Max = max_message_bytes(S),
    seccomp_dist_stats:refused(Node, too_large, {Len, Max}),
    case oversized_sender(Head, Node) of
        {message, From} ->
            Note = {seccomp_dist_refused, node(), {too_large, Len, Max}},
            _ = erlang:send(From, Note, [noconnect, nosuspend]),
            ok;
        {spawn_request, ReqId, From} ->
            inject(seccomp_dist_filter:spawn_refusal(ReqId, From, system_limit), S);
        none ->
            ok
    end,
    case maps:get(on_violation, maps:get(rules, S#rx.ctx)) of
        disconnect -> exit({seccomp_dist_refused, too_large});
        drop -> ok = drop(S), S
    end.

oversized_sender(<<112, Ctl/binary>>, Node) ->
    try binary_to_term(Ctl, [safe, used]) of
        {Term, _Used} -> own_sender(Term, Node)
    catch
        error:badarg -> none
    end;
oversized_sender(_Head, _Node) ->
    none.

own_sender(Ctl, Node) ->
    case seccomp_dist_filter:sender(Ctl) of
        {_, From} = Found when is_pid(From), node(From) =:= Node -> Found;
        {spawn_request, _ReqId, From} = Found when is_pid(From), node(From) =:= Node -> Found;
        _ -> none
    end.

%% The peer's rules are worked out again only when `set_policy/1' put a new
%% policy (persistent_term hands back the very same term until then). The
%% atom budget spent so far stays spent. A driven connection's driver is
%% brought up to date at the same time.
current(#rx{out = {port, _}, caps = Caps, node = Node, policy = Policy, ctx = #{rules := Rules} = Ctx} = S) ->
    {Policy1, Rules1} = seccomp_dist_port:sync(Caps, Node, {Policy, Rules}),
    S#rx{policy = Policy1, ctx = Ctx#{rules := Rules1}};
current(#rx{policy = Policy} = S) ->
    case seccomp_dist_policy:current() of
        Policy -> S;
        New ->
            #rx{node = Node, ctx = Ctx} = S,
            Rules = seccomp_dist_policy:rules_for(Node, New),
            S#rx{policy = New, ctx = Ctx#{rules := Rules}}
    end.

%% Hand a judged packet to the runtime, or not.
deliver(Packet, #rx{out = {dhandle, DHandle}}) -> erlang:dist_ctrl_put_data(DHandle, Packet);
deliver(_Packet, #rx{out = {port, Port}}) -> seccomp_dist_port:verdict(Port, true).

drop(#rx{out = {dhandle, _}}) -> ok;
drop(#rx{out = {port, Port}}) -> seccomp_dist_port:verdict(Port, false).

%% Send the peer a packet of our own (an answer to what was refused), when
%% the connection takes it: for a peer that reads nothing, answers are
%% dropped rather than piled up (the driver checks its queue; over TLS, the
%% sender's mailbox).
inject(none, _S) -> ok;
inject(Packet, #rx{out = {dhandle, _}, ctrl = Ctrl}) ->
    case erlang:process_info(Ctrl, message_queue_len) of
        {message_queue_len, N} when N < ?INJECT_QUEUE -> Ctrl ! {inject, Packet}, ok;
        _ -> ok
    end;
inject(Packet, #rx{out = {port, Port}}) -> seccomp_dist_port:inject(Port, Packet).

%% A packet the receiver reads itself (over TLS): the local identifiers it
%% names are noted first, as the driver notes those of every packet it reads.
packet(Packet, #rx{out = {dhandle, _}, caps = Caps} = S) ->
    case seccomp_dist_caps:named_by_peer(Packet, Caps) of
        ok -> judge(Packet, S);
        too_many -> exit({seccomp_dist_refused, too_many_unshown_identifiers})
    end;
packet(Packet, S) ->
    judge(Packet, S).

judge(Packet, #rx{node = Node, ctx = Ctx} = S) ->
    {Decision, Atoms} = seccomp_dist_filter:decide(Packet, Ctx),
    %% Judging a large packet may have decoded it here: that heap is let go
    %% now, not at some later collection.
    _ = byte_size(Packet) >= ?COLLECT_AFTER_BYTES andalso garbage_collect(),
    S1 = S#rx{ctx = Ctx#{atoms_left := maps:get(atoms_left, Ctx) - Atoms}},
    case Decision of
        {accept, Kind, _} ->
            deliver(Packet, S1),
            S1#rx{accepted = maps:update_with(Kind, fun(N) -> N + 1 end, 1, S1#rx.accepted)};
        {refuse, Kind, Why, Reply} ->
            ok = drop(S1),
            S2 = flush(S1),
            seccomp_dist_stats:refused(Node, Kind, Why),
            ok = inject(Reply, S1),
            case maps:get(on_violation, maps:get(rules, Ctx)) of
                disconnect -> exit({seccomp_dist_refused, Kind});
                drop -> S2
            end;
        {malformed, Why} ->
            _ = flush(S1),
            seccomp_dist_stats:malformed(Node, Why),
            exit({seccomp_dist_malformed, seccomp_dist_stats:bounded(Why)})
    end.
