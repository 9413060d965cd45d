%% @doc The `seccomp' carrier over TLS: `-proto_dist seccomp_tls'.
%%
%% The same carrier as {@link seccomp_dist} (policy, filter, framing), with
%% connections over {@link seccomp_dist_tls}: certificates verified on both
%% sides and the host of each node's name proven by its certificate.
%% Configure `ssl' as for `inet_tls_dist', with `-ssl_dist_optfile File'.
-module(seccomp_tls_dist).

-export([childspecs/0, listen/1, listen/2, accept/1, accept_connection/5, setup/5, close/1,
         select/1, is_node_name/1, address/0]).

-define(TRANSPORT, seccomp_dist_tls).

%% `ssl''s processes for distribution, started with the kernel, as for
%% `inet_tls_dist'.
childspecs() -> inet_tls_dist:childspecs().

listen(Name) -> seccomp_dist:listen_over(?TRANSPORT, Name).
listen(Name, _Host) -> seccomp_dist:listen_over(?TRANSPORT, Name).
accept(Listen) -> seccomp_dist:accept_over(?TRANSPORT, Listen).
accept_connection(Acceptor, Ctrl, MyNode, Allowed, SetupTime) ->
    seccomp_dist:accept_connection_over(?TRANSPORT, Acceptor, Ctrl, MyNode, Allowed, SetupTime).
setup(Node, Type, MyNode, LongOrShort, SetupTime) ->
    seccomp_dist:setup_over(?TRANSPORT, Node, Type, MyNode, LongOrShort, SetupTime).
close(Listen) -> seccomp_dist:close(Listen).
select(Node) -> seccomp_dist:select(Node).
is_node_name(Node) -> seccomp_dist:is_node_name(Node).
address() -> seccomp_dist:address_over(?TRANSPORT).
