%% @doc A TCP connection's port after the handshake: the carrier's driver
%% (in `seccomp_nif''s library) is the connection's distribution controller.
%% The runtime writes outgoing packets to it and takes incoming ones from
%% it, with no process in between; the driver records what each outgoing
%% packet shows the peer, and delivers an incoming packet on its own only
%% when it is one the filter is sure to accept (a message to a process or
%% alias the peer holds, or a spawn request of a function the `rpc' rules
%% allow; see `fast.rs'). Every other packet goes to the
%% connection's receiver (the port's owner) as `{Port, packet, Packet}' and
%% waits, with the packets behind it, for {@link verdict/2}; so does the
%% head of a frame over `max_message_bytes', read and thrown away (`{Port,
%% too_large, Bytes, Head}', whose verdict is always no).
%%
%% The driver's rules (`send', `max_message_bytes', `rpc', the policy epoch
%% they belong to) and its copy of which local processes are registered come
%% from the receiver ({@link sync/3}); while they are out of date the
%% driver sends every packet to the receiver.
-module(seccomp_dist_port).

-export([open/3, enable/2, verdict/2, inject/2, tick/1, getstat/1, sync/3, backed_up/1]).

-define(CMD_ACCEPT, 1).
-define(CMD_DROP, 2).
-define(CMD_INJECT, 3).
-define(CMD_TICK, 4).
-define(CMD_GETSTAT, 5).
-define(CMD_ENABLE, 6).
-define(CMD_BACKED_UP, 7).

%% @doc A driver port for the connected TCP socket `Socket' (whose data the
%% runtime's inet driver has not read: the port reads the socket itself),
%% with the connection state `Conn' ({@link seccomp_dist_caps:new/0}).
%% The calling process stays linked to it.
%% Output waiting longer than `SendTimeoutMs' closes it. It reads nothing
%% until {@link enable/4}.
-spec open(inet:socket(), seccomp_dist_caps:conn(), pos_integer()) -> port().
open(Socket, Conn, SendTimeoutMs) ->
    {ok, Fd} = inet:getfd(Socket),
    Id = seccomp_dist_caps:id(Conn),
    open_port({spawn_driver, lists:flatten(io_lib:format("libseccomp_nif ~w ~w ~w", [Id, Fd, SendTimeoutMs]))},
              [binary]).

%% @doc Start reading (the receiver, once it owns the port and has
%% brought the driver's rules up to date). `Buffered': bytes already read
%% from the socket.
-spec enable(port(), binary()) -> ok.
enable(Port, Buffered) -> control(Port, ?CMD_ENABLE, Buffered).

%% @doc Deliver (`true') or drop the packet the receiver was given.
-spec verdict(port(), boolean()) -> ok.
verdict(Port, true) -> control(Port, ?CMD_ACCEPT, <<>>);
verdict(Port, false) -> control(Port, ?CMD_DROP, <<>>).

%% @doc Send `Packet' to the peer, behind what is queued.
%% (Dropped while more than the port's busy limit is queued: a peer that
%% reads nothing makes no answers pile up.)
-spec inject(port(), binary()) -> ok.
inject(Port, Packet) -> control(Port, ?CMD_INJECT, Packet).

-spec tick(port()) -> ok.
tick(Port) -> control(Port, ?CMD_TICK, <<>>).

%% @doc Whether output to the peer has waited a while with no byte of it
%% written: the peer is not reading what it is sent.
-spec backed_up(port()) -> boolean().
backed_up(Port) -> erlang:port_control(Port, ?CMD_BACKED_UP, <<>>) =:= <<1>>.

%% @doc Packets received and sent, and bytes waiting to be sent.
-spec getstat(port()) -> {ok, non_neg_integer(), non_neg_integer(), non_neg_integer()}.
getstat(Port) ->
    <<Received:64, Sent:64, Pending:64>> = erlang:port_control(Port, ?CMD_GETSTAT, <<>>),
    {ok, Received, Sent, Pending}.

control(Port, Command, Data) ->
    <<>> = erlang:port_control(Port, Command, Data),
    ok.

%% @doc Bring the driver's rules and registry up to date (the policy is
%% read after the epoch, so rules never belong to an older policy than the
%% epoch they are given with), and count the messages it delivered on its
%% own. `Rules' are those of `Policy', for the peer `Node'; returns the
%% policy in force and the peer's rules under it.
-spec sync(seccomp_dist_caps:conn(), node(), {term(), seccomp_dist_policy:node_rules()}) ->
          {term(), seccomp_dist_policy:node_rules()}.
sync(Conn, Node, {Policy, Rules}) ->
    {Epoch, RulesStale, RegistryStale, Messages, Spawns} =
        seccomp_nif:dist_conn_stale(seccomp_dist_caps:resource(Conn)),
    _ = Messages > 0 andalso seccomp_dist_stats:accepted(Node, send, Messages),
    _ = Spawns > 0 andalso seccomp_dist_stats:accepted(Node, spawn_request, Spawns),
    {Policy1, Rules1} = case seccomp_dist_policy:current() of
                            Policy -> {Policy, Rules};
                            New -> {New, seccomp_dist_policy:rules_for(Node, New)}
                        end,
    _ = RulesStale andalso seccomp_dist_caps:rules(Conn, Epoch, Rules1, seccomp_dist_filter:doors()),
    _ = RegistryStale andalso seccomp_dist_caps:registry(Conn, seccomp_dist_system:named()),
    {Policy1, Rules1}.
