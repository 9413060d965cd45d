%% @doc The TLS transport of the `seccomp' carrier (`-proto_dist seccomp_tls').
%%
%% OTP's `ssl', configured like `inet_tls_dist' (`-ssl_dist_optfile File',
%% a file of `[{server, Opts}, {client, Opts}]', read by `ssl_dist_sup'),
%% with two things always on: both sides verify the other's certificate
%% chain (`verify_peer', and a node without a certificate is refused), and
%% the host of a node's name must be one its certificate names (checked by
%% {@link verify_host/2}: the server's against the node this node connects
%% to, the client's against the name it claims in the handshake). So
%% per-node rules rest on a name the peer has proven.
%% See {@link seccomp_dist_tcp} for the transport interface.
-module(seccomp_dist_tls).

-export([protocol/0, tags/0, upgrade/2, verify_host/2]).
-export([modules/0, driven/0]).

%% Options the carrier sets itself: the verification it guarantees (a
%% `verify_fun' could accept any certificate), and the socket's framing.
-define(CARRIER_OWNED, [verify, verify_fun, fail_if_no_peer_cert, server_name_indication,
                        erl_dist, active, packet, mode, header]).

-spec protocol() -> tls.
protocol() -> tls.

-spec tags() -> {ssl, ssl_closed, ssl_error, ssl_passive}.
tags() -> {ssl, ssl_closed, ssl_error, ssl_passive}.

%% @doc Run the TLS handshake on a connected TCP socket; a client also
%% checks that the server's certificate names `Host'.
-spec upgrade(server | {client, string()}, inet:socket()) -> {ok, ssl:sslsocket()} | {error, term()}.
upgrade(server, Tcp) ->
    Opts = options(server) ++ [{verify, verify_peer}, {fail_if_no_peer_cert, true}],
    ssl:handshake(Tcp, Opts, net_kernel:connecttime());
upgrade({client, Host}, Tcp) ->
    %% The host is checked below, by the same rule as on the server.
    Opts = options(client) ++ [{verify, verify_peer}, {server_name_indication, disable}],
    case ssl:connect(Tcp, Opts, net_kernel:connecttime()) of
        {ok, S} ->
            case verify_host(S, Host) of
                ok -> {ok, S};
                {error, _} = E -> _ = ssl:close(S), E
            end;
        {error, _} = E ->
            E
    end.

%% `erl_dist' makes `ssl' use the processes `ssl_dist_sup' starts with the
%% kernel (the `ssl' application is not running yet when distribution
%% starts); the options from `-ssl_dist_optfile' come first. The handshake's
%% messages have 4-byte lengths over TLS, as `inet_tls_dist' sends them.
options(Role) ->
    User = try ets:lookup(ssl_dist_opts, Role) of
               [{Role, Opts}] -> Opts;
               [] -> []
           catch
               error:badarg -> []
           end,
    [{erl_dist, true}, binary, {active, false}, {packet, 4}
     | [O || O <- User, is_tuple(O), not lists:member(element(1, O), ?CARRIER_OWNED)]].

%% @doc `ok' if the peer's certificate names `Host' (a DNS name, or an IP
%% address written as one).
-spec verify_host(ssl:sslsocket(), string()) -> ok | {error, term()}.
verify_host(S, Host) ->
    case ssl:peercert(S) of
        {ok, Der} ->
            Cert = public_key:pkix_decode_cert(Der, otp),
            Ids = [{dns_id, Host} | case inet:parse_address(Host) of
                                        {ok, Ip} -> [{ip, Ip}];
                                        {error, _} -> []
                                    end],
            case public_key:pkix_verify_hostname(Cert, Ids) of
                true -> ok;
                false -> {error, {certificate_does_not_name, Host}}
            end;
        {error, _} ->
            {error, no_peer_certificate}
    end.

%% @doc The modules that handle its sockets: `send/2', `recv/3' and
%% `controlling_process/2', then `setopts/2', `getopts/2', `getstat/2' and
%% `peername/1'.
-spec modules() -> {module(), module()}.
modules() -> {ssl, ssl}.

%% @doc Whether a connection moves to the carrier's driver after the handshake. TLS records are read and written by `ssl''s processes, not by the carrier's driver.
-spec driven() -> boolean().
driven() -> false.
