%% @doc A TCP distribution carrier that filters what other nodes may do here.
%%
%% Start a node with `-proto_dist seccomp' and the VM uses this module
%% instead of `inet_tcp_dist'. It speaks the same wire protocol (so plain
%% nodes can connect), but refuses the atom-cache and fragment flags during the
%% handshake, and checks every incoming packet with {@link seccomp_dist_filter}
%% before handing it to the VM. The policy comes from the `dist_policy' key of
%% the `beam_seccomp' application (a map, or `{file, Path}' holding one), read
%% before the first connection; {@link set_policy/1} changes it at run time.
%%
%% Each connection has two processes: the controller (socket owner during the
%% handshake, then the sender of outgoing data) and the receiver (socket owner
%% after the handshake, which filters incoming data).
-module(seccomp_dist).

-export([listen/1, listen/2, accept/1, accept_connection/5, setup/5, close/1, select/1,
         is_node_name/1, address/0]).
-export([set_policy/1, policy/0, stats/0]).
%% callbacks named in #hs_data{}, and process entry points
-export([tick/1, getstat/1, setopts/2, getopts/2]).
-export([acceptor/2, controller/1, receiver/4, accept_handshake/6, setup_handshake/6]).

-include_lib("kernel/include/net_address.hrl").
-include_lib("kernel/include/dist.hrl").
-include_lib("kernel/include/dist_util.hrl").

-define(POLICY_KEY, {?MODULE, policy}).
-define(STATS, seccomp_dist_stats).
%% Without these two, every packet is one whole, decodable term sequence.
-define(REJECTED_FLAGS, (?DFLAG_DIST_HDR_ATOM_CACHE bor ?DFLAG_FRAGMENTS)).

%%% Policy and statistics ----------------------------------------------------------

%% @doc Replace the policy (see {@link seccomp_dist_filter:normalise/1}).
-spec set_policy(map() | {file, file:name_all()} | unfiltered_for_benchmarks) -> ok | {error, term()}.
set_policy({file, Path}) ->
    case file:consult(Path) of
        {ok, [Map]} -> set_policy(Map);
        {ok, _} -> {error, {invalid_dist_policy_file, Path}};
        {error, Why} -> {error, {file, Path, Why}}
    end;
set_policy(unfiltered_for_benchmarks) ->
    persistent_term:put(?POLICY_KEY, unfiltered);
set_policy(Map) ->
    case seccomp_dist_filter:normalise(Map) of
        {ok, P} -> persistent_term:put(?POLICY_KEY, P);
        {error, _} = E -> E
    end.

%% @doc The policy in force.
-spec policy() -> seccomp_dist_filter:policy() | unfiltered.
policy() -> persistent_term:get(?POLICY_KEY, seccomp_dist_filter:default()).

%% @doc Per node, how many packets of each kind were accepted and refused.
-spec stats() -> #{node() => #{{atom(), accepted | refused} | last_refused => term()}}.
stats() ->
    try ets:tab2list(?STATS) of
        Rows -> lists:foldl(fun({{Node, Kind, Verdict}, N}, Acc) -> put_stat(Node, {Kind, Verdict}, N, Acc);
                               ({{Node, last_refused}, What}, Acc) -> put_stat(Node, last_refused, What, Acc)
                            end, #{}, Rows)
    catch error:badarg -> #{}
    end.

put_stat(Node, Key, Value, Acc) ->
    maps:update_with(Node, fun(M) -> M#{Key => Value} end, #{Key => Value}, Acc).

count(Node, Kind, Verdict) ->
    Key = {Node, Kind, Verdict},
    try ets:update_counter(?STATS, Key, 1, {Key, 0}) catch error:badarg -> 0 end.

%% The policy is loaded before the first connection: no connection is ever
%% unfiltered, and a bad policy stops distribution from starting.
load_policy() ->
    _ = application:load(beam_seccomp),
    case application:get_env(beam_seccomp, dist_policy) of
        undefined -> ok;
        {ok, Source} -> set_policy(Source)
    end.

%%% The carrier interface ------------------------------------------------------------

select(Node) ->
    case split_node(Node) of
        {ok, _Name, Host} -> element(1, inet:getaddr(Host, family())) =:= ok;
        error -> false
    end.

is_node_name(Node) when is_atom(Node) -> split_node(Node) =/= error;
is_node_name(_) -> false.

address() ->
    {ok, Host} = inet:gethostname(),
    #net_address{host = Host, protocol = tcp, family = family()}.

family() ->
    case init:get_argument(seccomp_dist_inet6) of
        {ok, _} -> inet6;
        error -> inet
    end.

listen(Name) ->
    {ok, Host} = inet:gethostname(),
    listen(Name, Host).

listen(Name, _Host) ->
    case load_policy() of
        ok ->
            ets:info(?STATS) =:= undefined
                andalso ets:new(?STATS, [named_table, public, {write_concurrency, true}]),
            Opts = [binary, {active, false}, {packet, 2}, {reuseaddr, true}, family(), {backlog, 128}
                    | listen_interface()],
            case gen_tcp:listen(listen_port(), Opts) of
                {ok, Socket} ->
                    {ok, {Ip, Port}} = inet:sockname(Socket),
                    Address = (address())#net_address{address = {Ip, Port}},
                    case (net_kernel:epmd_module()):register_node(Name, Port) of
                        {ok, Creation} -> {ok, {Socket, Address, Creation}};
                        Error -> Error
                    end;
                Error ->
                    Error
            end;
        {error, _} = E ->
            E
    end.

listen_port() ->
    case application:get_env(kernel, inet_dist_listen_min) of
        {ok, N} when is_integer(N) -> N;
        _ -> 0
    end.

listen_interface() ->
    case application:get_env(kernel, inet_dist_use_interface) of
        {ok, Ip} -> [{ip, Ip}];
        _ -> []
    end.

accept(Listen) ->
    spawn_opt(?MODULE, acceptor, [self(), Listen], [link, {priority, max}]).

acceptor(Kernel, Listen) ->
    case gen_tcp:accept(Listen) of
        {ok, Socket} ->
            Ctrl = start_controller(Socket),
            Kernel ! {accept, self(), Ctrl, family(), tcp},
            receive
                {Kernel, controller, Pid} ->
                    ok = request(Ctrl, {supervisor, Pid}),
                    Pid ! {self(), controller};
                {Kernel, unsupported_protocol} ->
                    exit(unsupported_protocol)
            end,
            acceptor(Kernel, Listen);
        Error ->
            exit(Error)
    end.

accept_connection(Acceptor, Ctrl, MyNode, Allowed, SetupTime) ->
    spawn_opt(?MODULE, accept_handshake, [self(), Acceptor, Ctrl, MyNode, Allowed, SetupTime],
              dist_util:net_ticker_spawn_options()).

accept_handshake(Kernel, Acceptor, Ctrl, MyNode, Allowed, SetupTime) ->
    receive
        {Acceptor, controller} ->
            Timer = dist_util:start_timer(SetupTime),
            HS = (hs_data(Ctrl))#hs_data{kernel_pid = Kernel, this_node = MyNode, timer = Timer,
                                         this_flags = 0, allowed = Allowed},
            dist_util:handshake_other_started(HS)
    end.

setup(Node, Type, MyNode, LongOrShort, SetupTime) ->
    spawn_opt(?MODULE, setup_handshake, [self(), Node, Type, MyNode, LongOrShort, SetupTime],
              dist_util:net_ticker_spawn_options()).

setup_handshake(Kernel, Node, Type, MyNode, _LongOrShort, SetupTime) ->
    Timer = dist_util:start_timer(SetupTime),
    {ok, Name, Host} = split_node(Node),
    case inet:getaddr(Host, family()) of
        {ok, Ip} ->
            case (net_kernel:epmd_module()):port_please(Name, Ip) of
                {port, Port, Version} ->
                    dist_util:reset_timer(Timer),
                    case gen_tcp:connect(Ip, Port, [binary, {active, false}, {packet, 2}, family()]) of
                        {ok, Socket} ->
                            Ctrl = start_controller(Socket),
                            ok = request(Ctrl, {supervisor, self()}),
                            HS = (hs_data(Ctrl))#hs_data{kernel_pid = Kernel, other_node = Node,
                                                         this_node = MyNode, timer = Timer,
                                                         this_flags = 0, other_version = Version,
                                                         request_type = Type},
                            dist_util:handshake_we_started(HS);
                        _ -> ?shutdown(Node)
                    end;
                _ -> ?shutdown(Node)
            end;
        _ -> ?shutdown(Node)
    end.

close(Listen) -> gen_tcp:close(Listen).

split_node(Node) ->
    case string:split(atom_to_list(Node), "@") of
        [Name, Host] when Name =/= [], Host =/= [] -> {ok, Name, Host};
        _ -> error
    end.

hs_data(Ctrl) ->
    #hs_data{socket = Ctrl,
             f_send = fun(C, Packet) -> request(C, {send, Packet}) end,
             f_recv = fun(C, Len, Timeout) -> request(C, {recv, Len, Timeout}) end,
             f_setopts_pre_nodeup = fun(C) -> request(C, nodeup_opts) end,
             f_setopts_post_nodeup = fun(C) -> request(C, nodeup_opts) end,
             f_getll = fun(C) -> {ok, C} end,
             f_address = fun(C, Node) -> request(C, {address, Node}) end,
             f_handshake_complete = fun(C, Node, DHandle) -> request(C, {handshake_complete, Node, DHandle}) end,
             mf_tick = {?MODULE, tick},
             mf_getstat = {?MODULE, getstat},
             mf_setopts = {?MODULE, setopts},
             mf_getopts = {?MODULE, getopts},
             reject_flags = ?REJECTED_FLAGS}.

tick(Ctrl) -> Ctrl ! tick, ok.
getstat(Ctrl) -> request(Ctrl, getstat).
setopts(Ctrl, Opts) -> request(Ctrl, {setopts, Opts}).
getopts(Ctrl, Opts) -> request(Ctrl, {getopts, Opts}).

%% A synchronous request to a connection's controller.
request(Ctrl, Req) ->
    Ref = monitor(process, Ctrl),
    Ctrl ! {seccomp_dist_req, self(), Ref, Req},
    receive
        {Ref, Reply} -> demonitor(Ref, [flush]), Reply;
        {'DOWN', Ref, process, Ctrl, Why} -> exit({controller_down, Why})
    end.

%%% Per-connection processes -------------------------------------------------------

start_controller(Socket) ->
    Ctrl = spawn_opt(?MODULE, controller, [Socket],
                     [{priority, max}, {message_queue_data, off_heap}, {fullsweep_after, 0}]),
    ok = gen_tcp:controlling_process(Socket, Ctrl),
    Ctrl.

%% During the handshake: serve dist_util's requests. Afterwards: send.
controller(Socket) ->
    receive
        {seccomp_dist_req, From, Ref, {handshake_complete, Node, DHandle}} ->
            Receiver = spawn_opt(?MODULE, receiver, [self(), Socket, Node, DHandle],
                                 [link, {message_queue_data, off_heap}, {fullsweep_after, 0}]),
            ok = gen_tcp:controlling_process(Socket, Receiver),
            ok = erlang:dist_ctrl_input_handler(DHandle, Receiver),
            Receiver ! go,
            From ! {Ref, ok},
            process_flag(priority, normal),
            erlang:dist_ctrl_get_data_notification(DHandle),
            sender(Socket, DHandle);
        {seccomp_dist_req, From, Ref, Req} ->
            From ! {Ref, handshake_request(Socket, Req)},
            controller(Socket);
        tick ->
            controller(Socket);
        {tcp_closed, Socket} ->
            exit(connection_closed)
    end.

handshake_request(_Socket, {supervisor, Pid}) -> link(Pid), ok;
handshake_request(Socket, {send, Packet}) -> gen_tcp:send(Socket, Packet);
%% dist_util reads handshake messages as lists.
handshake_request(Socket, {recv, Len, Timeout}) ->
    case gen_tcp:recv(Socket, Len, Timeout) of
        {ok, Bin} when is_binary(Bin) -> {ok, binary_to_list(Bin)};
        Other -> Other
    end;
handshake_request(Socket, nodeup_opts) ->
    inet:setopts(Socket, [{active, false}, {packet, 4}, {nodelay, true} | buffer_opts()]);
handshake_request(Socket, {address, Node}) ->
    {ok, Address} = inet:peername(Socket),
    {ok, _Name, Host} = split_node(Node),
    #net_address{address = Address, host = Host, protocol = tcp, family = family()};
handshake_request(Socket, Req) ->
    socket_request(Socket, Req).

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
socket_request(Socket, {setopts, Opts}) -> inet:setopts(Socket, Opts);
socket_request(Socket, {getopts, Opts}) -> inet:getopts(Socket, Opts);
socket_request(_Socket, _Other) -> {error, unsupported}.

sender(Socket, DHandle) ->
    receive
        dist_data ->
            send_all(Socket, DHandle),
            sender(Socket, DHandle);
        tick ->
            send_or_die(Socket, <<>>),
            sender(Socket, DHandle);
        {inject, Packet} ->
            send_or_die(Socket, Packet),
            sender(Socket, DHandle);
        {seccomp_dist_req, From, Ref, Req} ->
            From ! {Ref, socket_request(Socket, Req)},
            sender(Socket, DHandle);
        _ ->
            sender(Socket, DHandle)
    end.

send_all(Socket, DHandle) ->
    case erlang:dist_ctrl_get_data(DHandle) of
        none -> erlang:dist_ctrl_get_data_notification(DHandle);
        Data -> send_or_die(Socket, Data), send_all(Socket, DHandle)
    end.

send_or_die(Socket, Data) ->
    case gen_tcp:send(Socket, Data) of
        ok -> ok;
        {error, Why} -> exit({send_error, Why})
    end.

%% The filter: every packet is checked before the VM sees it.
receiver(Ctrl, Socket, Node, DHandle) ->
    link(Ctrl),
    put(seccomp_dist_ctrl, Ctrl),
    receive go -> ok end,
    ok = inet:setopts(Socket, [{active, 10}]),
    receive_loop(Socket, Node, DHandle, {none, none}).

%% `unfiltered' exists only to measure the filter's own cost (make bench).
decide(_Packet, _Node, unfiltered) -> {accept, unfiltered};
decide(Packet, Node, Rules) -> seccomp_dist_filter:decide(Packet, Node, Rules).

%% A dropped spawn request would leave the requester waiting forever
%% (`spawn/4', `rpc:call/4' without a timeout): answer it with a failed
%% spawn reply instead, as the VM does for a spawn it cannot perform.
refuse_spawn(<<_, Rest/binary>>) ->
    try binary_to_term(Rest, [safe]) of
        Ctl when element(1, Ctl) =:= 29; element(1, Ctl) =:= 30 ->
            Reply = term_to_binary({31, element(2, Ctl), element(3, Ctl), 0, notsup}),
            get(seccomp_dist_ctrl) ! {inject, <<112, Reply/binary>>};
        _ -> ok
    catch
        error:badarg -> ok
    end.

%% The node's rules are worked out again only when `set_policy/1' changed
%% the policy (persistent_term hands back the very same term until then).
rules(Node, {Policy, Rules} = Cache) ->
    case policy() of
        Policy -> {Rules, Cache};
        unfiltered -> {unfiltered, {unfiltered, unfiltered}};
        New ->
            NewRules = seccomp_dist_filter:rules_for(Node, New),
            {NewRules, {New, NewRules}}
    end.

receive_loop(Socket, Node, DHandle, Cache) ->
    receive
        {tcp, Socket, Packet} ->
            {Rules, Cache1} = rules(Node, Cache),
            case decide(Packet, Node, Rules) of
                {accept, Kind} ->
                    count(Node, Kind, accepted),
                    erlang:dist_ctrl_put_data(DHandle, Packet);
                {refuse, Kind, Why} ->
                    count(Node, Kind, refused),
                    catch ets:insert(?STATS, {{Node, last_refused}, {Kind, Why}}),
                    Kind =:= spawn_request andalso refuse_spawn(Packet),
                    logger:warning("seccomp_dist: refused ~p from ~p: ~p", [Kind, Node, Why],
                                   #{domain => [beam_seccomp, dist]}),
                    maps:get(on_violation, Rules, drop) =:= disconnect andalso exit({seccomp_dist_refused, Why});
                {malformed, Why} ->
                    count(Node, malformed, refused),
                    logger:warning("seccomp_dist: malformed packet from ~p (~p), disconnecting",
                                   [Node, Why], #{domain => [beam_seccomp, dist]}),
                    exit({seccomp_dist_malformed, Why})
            end,
            receive_loop(Socket, Node, DHandle, Cache1);
        {tcp_passive, Socket} ->
            ok = inet:setopts(Socket, [{active, 10}]),
            receive_loop(Socket, Node, DHandle, Cache);
        {tcp_closed, Socket} ->
            exit(connection_closed);
        _ ->
            receive_loop(Socket, Node, DHandle, Cache)
    end.
