%% @doc The TCP transport of the `seccomp' carrier (`-proto_dist seccomp').
%%
%% A transport module takes over a connected TCP socket ({@link upgrade/2}),
%% checks the host a peer claims ({@link verify_host/2}), names the modules
%% that handle its sockets ({@link modules/0}) and the messages of a socket
%% in active mode ({@link tags/0}); `protocol/0' is the protocol net_kernel
%% knows it by.
-module(seccomp_dist_tcp).

-export([protocol/0, tags/0, upgrade/2, verify_host/2]).
-export([modules/0, driven/0]).

-spec protocol() -> tcp.
protocol() -> tcp.

-spec tags() -> {tcp, tcp_closed, tcp_error, tcp_passive}.
tags() -> {tcp, tcp_closed, tcp_error, tcp_passive}.

-spec upgrade(server | {client, string()}, inet:socket()) -> {ok, inet:socket()}.
upgrade(_Role, Socket) -> {ok, Socket}.

%% @doc TCP proves nothing about the peer's host: a node is who it claims
%% to be (per-node rules are advisory).
-spec verify_host(inet:socket(), string()) -> ok.
verify_host(_Socket, _Host) -> ok.

%% @doc The modules that handle its sockets: `send/2', `recv/3' and
%% `controlling_process/2', then `setopts/2', `getopts/2', `getstat/2' and
%% `peername/1'.
-spec modules() -> {module(), module()}.
modules() -> {gen_tcp, inet}.

%% @doc Whether a connection moves to the carrier's driver after the handshake. The carrier's driver reads and writes TCP sockets itself.
-spec driven() -> boolean().
driven() -> true.
