%% @doc A TCP distribution carrier that filters what other nodes may do here.
%%
%% Start a node with `-proto_dist seccomp' and the VM uses this module
%% instead of `inet_tcp_dist'. It speaks the same wire protocol (so plain
%% nodes can connect), but during the handshake it refuses every
%% distribution flag it does not understand (among them the atom cache and
%% fragments), and checks every incoming packet before handing it to the
%% VM: with {@link seccomp_dist_filter}, or, for the messages and spawn
%% requests the filter is sure to accept, in the driver that carries a TCP
%% connection after the handshake ({@link seccomp_dist_port}). The policy
%% comes from the `dist_policy' key of the `beam_seccomp' application (a
%% map, or `{file, Path}' holding one; see {@link seccomp_dist_policy}), read
%% before the first connection; {@link set_policy/1} changes it at run time.
%%
%% The processes of a connection are in {@link seccomp_dist_conn}. The
%% carrier runs over a transport: TCP here ({@link seccomp_dist_tcp}), TLS
%% with `-proto_dist seccomp_tls' ({@link seccomp_tls_dist}); the functions
%% ending in `_over' take the transport module.
-module(seccomp_dist).

-export([listen/1, listen/2, accept/1, accept_connection/5, setup/5, close/1, select/1,
         is_node_name/1, address/0]).
-export([listen_over/2, accept_over/2, accept_connection_over/6, setup_over/6, address_over/1]).
-export([set_policy/1, policy/0, stats/0]).
%% process entry points
-export([acceptor/3, accept_handshake/7, setup_handshake/7]).

-include_lib("kernel/include/net_address.hrl").
-include_lib("kernel/include/dist.hrl").
-include_lib("kernel/include/dist_util.hrl").

%% The distribution flags the filter understands (OTP 25's defaults, and
%% OTP 28's alternative-action signals, which it filters like their older
%% forms). Every other flag is refused, so a peer never sends what the
%% filter cannot read: without the atom cache and fragments every packet is
%% one whole term sequence, and control messages or term tags that later
%% releases put behind new flags never arrive.
-define(DFLAG_ALTACT_SIG_28, (16#20 bsl 32)).
-define(UNDERSTOOD_FLAGS,
        (?DFLAG_PUBLISHED bor ?DFLAG_EXTENDED_REFERENCES bor ?DFLAG_DIST_MONITOR bor
         ?DFLAG_FUN_TAGS bor ?DFLAG_DIST_MONITOR_NAME bor ?DFLAG_NEW_FUN_TAGS bor
         ?DFLAG_EXTENDED_PIDS_PORTS bor ?DFLAG_EXPORT_PTR_TAG bor ?DFLAG_BIT_BINARIES bor
         ?DFLAG_NEW_FLOATS bor ?DFLAG_UNICODE_IO bor ?DFLAG_SMALL_ATOM_TAGS bor
         ?DFLAG_UTF8_ATOMS bor ?DFLAG_MAP_TAG bor ?DFLAG_BIG_CREATION bor ?DFLAG_SEND_SENDER bor
         ?DFLAG_BIG_SEQTRACE_LABELS bor ?DFLAG_EXIT_PAYLOAD bor ?DFLAG_HANDSHAKE_23 bor
         ?DFLAG_UNLINK_ID bor ?DFLAG_MANDATORY_25_DIGEST bor ?DFLAG_SPAWN bor ?DFLAG_NAME_ME bor
         ?DFLAG_V4_NC bor ?DFLAG_ALIAS bor ?DFLAG_ALTACT_SIG_28)).
-define(NOT_UNDERSTOOD_FLAGS, (16#FFFFFFFFFFFFFFFF band (bnot ?UNDERSTOOD_FLAGS))).

%%% Policy and statistics ----------------------------------------------------------

%% @doc Replace the policy (see {@link seccomp_dist_policy:normalise/1}).
-spec set_policy(seccomp_dist_policy:source()) -> ok | {error, term()}.
set_policy(Source) -> seccomp_dist_policy:install(Source).

%% @doc The policy in force.
-spec policy() -> seccomp_dist_policy:policy().
policy() -> seccomp_dist_policy:current().

%% @doc Per node, how many packets of each kind were accepted and refused,
%% and the last refusal.
-spec stats() -> #{node() => #{{atom(), accepted | refused} | last_refused => term()}}.
stats() -> seccomp_dist_stats:stats().

%% The policy is loaded before the first connection: no connection is ever
%% unchecked, and a bad policy stops distribution from starting.
load_policy() ->
    _ = application:load(beam_seccomp),
    case application:get_env(beam_seccomp, dist_policy) of
        undefined -> ok;
        {ok, Source} -> set_policy(Source)
    end.

%% The policy, and the driver TCP connections move to after the handshake
%% (loaded by net_kernel, which listens: it lives as long as distribution).
load_ready() ->
    case load_policy() of
        ok -> seccomp_nif:load_driver();
        {error, _} = E -> E
    end.

%%% The carrier interface ------------------------------------------------------------

select(Node) ->
    case split_node(Node) of
        {ok, _Name, Host} -> element(1, inet:getaddr(Host, family())) =:= ok;
        error -> false
    end.

is_node_name(Node) when is_atom(Node) -> split_node(Node) =/= error;
is_node_name(_) -> false.

address() -> address_over(seccomp_dist_tcp).

%% @doc The address of this node over `Transport'.
-spec address_over(module()) -> #net_address{}.
address_over(Transport) ->
    {ok, Host} = inet:gethostname(),
    #net_address{host = Host, protocol = Transport:protocol(), family = family()}.

family() ->
    case init:get_argument(seccomp_dist_inet6) of
        {ok, _} -> inet6;
        error -> inet
    end.

listen(Name) ->
    {ok, Host} = inet:gethostname(),
    listen(Name, Host).

listen(Name, _Host) -> listen_over(seccomp_dist_tcp, Name).

%% @doc Listen for connections over `Transport' (the socket that listens is
%% TCP's; a transport takes over each connected socket).
-spec listen_over(module(), atom()) -> {ok, {inet:socket(), #net_address{}, pos_integer()}} | {error, term()}.
listen_over(Transport, Name) ->
    case load_ready() of
        ok ->
            ok = seccomp_dist_stats:init(),
            ok = seccomp_dist_budget:init(),
            Opts = [binary, {active, false}, {packet, 2}, {reuseaddr, true}, family(), {backlog, 128}
                    | listen_interface()],
            case gen_tcp:listen(listen_port(), Opts) of
                {ok, Socket} ->
                    {ok, {Ip, Port}} = inet:sockname(Socket),
                    Address = (address_over(Transport))#net_address{address = {Ip, Port}},
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

accept(Listen) -> accept_over(seccomp_dist_tcp, Listen).

%% @doc The acceptor of connections over `Transport'.
-spec accept_over(module(), inet:socket()) -> pid().
accept_over(Transport, Listen) ->
    spawn_opt(?MODULE, acceptor, [Transport, self(), Listen], [link, {priority, max}]).

%% @private
acceptor(Transport, Kernel, Listen) ->
    case gen_tcp:accept(Listen) of
        {ok, Socket} ->
            Ctrl = seccomp_dist_conn:start_controller(Transport, server, Socket),
            Kernel ! {accept, self(), Ctrl, family(), Transport:protocol()},
            receive
                {Kernel, controller, Pid} ->
                    ok = seccomp_dist_conn:supervise(Ctrl, Pid),
                    Pid ! {self(), controller};
                {Kernel, unsupported_protocol} ->
                    exit(unsupported_protocol)
            end,
            acceptor(Transport, Kernel, Listen);
        Error ->
            exit(Error)
    end.

accept_connection(Acceptor, Ctrl, MyNode, Allowed, SetupTime) ->
    accept_connection_over(seccomp_dist_tcp, Acceptor, Ctrl, MyNode, Allowed, SetupTime).

%% @doc The handshake of an accepted connection over `Transport'.
-spec accept_connection_over(module(), pid(), pid(), node(), term(), non_neg_integer()) -> pid().
accept_connection_over(Transport, Acceptor, Ctrl, MyNode, Allowed, SetupTime) ->
    spawn_opt(?MODULE, accept_handshake, [Transport, self(), Acceptor, Ctrl, MyNode, Allowed, SetupTime],
              dist_util:net_ticker_spawn_options()).

%% @private
accept_handshake(Transport, Kernel, Acceptor, Ctrl, MyNode, Allowed, SetupTime) ->
    receive
        {Acceptor, controller} ->
            Timer = dist_util:start_timer(SetupTime),
            HS = (hs_data(Transport, Ctrl))#hs_data{kernel_pid = Kernel, this_node = MyNode, timer = Timer,
                                         this_flags = 0, allowed = Allowed},
            dist_util:handshake_other_started(HS)
    end.

setup(Node, Type, MyNode, LongOrShort, SetupTime) ->
    setup_over(seccomp_dist_tcp, Node, Type, MyNode, LongOrShort, SetupTime).

%% @doc A connection to `Node' over `Transport'.
-spec setup_over(module(), node(), atom(), node(), atom(), non_neg_integer()) -> pid().
setup_over(Transport, Node, Type, MyNode, LongOrShort, SetupTime) ->
    spawn_opt(?MODULE, setup_handshake, [Transport, self(), Node, Type, MyNode, LongOrShort, SetupTime],
              dist_util:net_ticker_spawn_options()).

%% @private
setup_handshake(Transport, Kernel, Node, Type, MyNode, _LongOrShort, SetupTime) ->
    Timer = dist_util:start_timer(SetupTime),
    {ok, Name, Host} = split_node(Node),
    case inet:getaddr(Host, family()) of
        {ok, Ip} ->
            case (net_kernel:epmd_module()):port_please(Name, Ip) of
                {port, Port, Version} ->
                    dist_util:reset_timer(Timer),
                    case gen_tcp:connect(Ip, Port, [binary, {active, false}, {packet, 2}, family()]) of
                        {ok, Socket} ->
                            Ctrl = seccomp_dist_conn:start_controller(Transport, {client, Host}, Socket),
                            ok = seccomp_dist_conn:supervise(Ctrl, self()),
                            HS = (hs_data(Transport, Ctrl))#hs_data{kernel_pid = Kernel, other_node = Node,
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

hs_data(Transport, Ctrl) ->
    #hs_data{socket = Ctrl,
             f_send = fun(C, Packet) -> request(C, {send, Packet}) end,
             f_recv = fun(C, Len, Timeout) -> request(C, {recv, Len, Timeout}) end,
             f_setopts_pre_nodeup = fun(C) -> request(C, nodeup_opts) end,
             f_setopts_post_nodeup = fun(C) -> request(C, nodeup_opts) end,
             f_getll = fun(C) -> request(C, low_level) end,
             f_address = fun(C, Node) -> request(C, {address, Node, family(), Transport:protocol()}) end,
             f_handshake_complete = fun(C, Node, DHandle) -> request(C, {handshake_complete, Node, DHandle}) end,
             %% dist_util calls these as funs, for the life of the connection.
             mf_tick = fun(C) -> C ! tick, ok end,
             mf_getstat = fun(C) -> request(C, getstat) end,
             mf_setopts = fun(C, Opts) -> request(C, {setopts, Opts}) end,
             mf_getopts = fun(C, Opts) -> request(C, {getopts, Opts}) end,
             %% Flags the runtime does not let a carrier refuse are mandatory
             %% in every release that could connect.
             reject_flags = ?NOT_UNDERSTOOD_FLAGS band dist_util:rejectable_flags()}.

request(Ctrl, Req) -> seccomp_dist_conn:request(Ctrl, Req).
