%% @doc The TCP transport of the `seccomp' carrier (`-proto_dist seccomp').
%%
%% A transport module takes over a connected TCP socket ({@link upgrade/2}),
%% and is called with the socket it returned as first argument: `send/2',
%% `recv/3', `setopts/2', `getopts/2', `getstat/2', `peername/1',
%% `controlling_process/2', `verify_host/2'; `tags/0' names the messages of
%% a socket in active mode, `protocol/0' is the protocol net_kernel knows it by.
-module(seccomp_dist_tcp).

-export([protocol/0, tags/0, upgrade/2, verify_host/2]).
-export([send/2, recv/3, setopts/2, getopts/2, getstat/2, peername/1, controlling_process/2]).

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

send(S, Data) -> gen_tcp:send(S, Data).
recv(S, Len, Timeout) -> gen_tcp:recv(S, Len, Timeout).
setopts(S, Opts) -> inet:setopts(S, Opts).
getopts(S, Opts) -> inet:getopts(S, Opts).
getstat(S, Opts) -> inet:getstat(S, Opts).
peername(S) -> inet:peername(S).
controlling_process(S, Pid) -> gen_tcp:controlling_process(S, Pid).
