%% A hand-made distribution client for tests: it speaks the handshake and
%% sends packets a real node never would. It needs no distribution of its
%% own (only epmd and the cookie).
-module(seccomp_dist_raw).

-export([connect/3, connect/4, send/2, send/3, raw/2, close/1, recv/2, flush/1, pid/2, mkpid/3, stall/1]).

-include_lib("kernel/include/dist.hrl").

flags() ->
    ?DFLAG_PUBLISHED bor ?DFLAG_EXTENDED_REFERENCES bor ?DFLAG_DIST_MONITOR bor
        ?DFLAG_FUN_TAGS bor ?DFLAG_DIST_MONITOR_NAME bor ?DFLAG_NEW_FUN_TAGS bor
        ?DFLAG_EXTENDED_PIDS_PORTS bor ?DFLAG_EXPORT_PTR_TAG bor ?DFLAG_BIT_BINARIES bor
        ?DFLAG_NEW_FLOATS bor ?DFLAG_UNICODE_IO bor ?DFLAG_SMALL_ATOM_TAGS bor
        ?DFLAG_UTF8_ATOMS bor ?DFLAG_MAP_TAG bor ?DFLAG_BIG_CREATION bor ?DFLAG_SEND_SENDER bor
        ?DFLAG_BIG_SEQTRACE_LABELS bor ?DFLAG_EXIT_PAYLOAD bor ?DFLAG_HANDSHAKE_23 bor
        ?DFLAG_UNLINK_ID bor ?DFLAG_MANDATORY_25_DIGEST bor ?DFLAG_SPAWN bor
        ?DFLAG_V4_NC bor ?DFLAG_ALIAS.

%% Connect to `Target' as `Me'. Returns a map with the socket and the
%% target's creation, or `{status, Status}' / `{closed, Why}' when the
%% target ends the handshake.
connect(Target, Me, Cookie) -> connect(Target, Me, Cookie, #{}).

connect(Target, Me, Cookie, Opts) ->
    [Name, Host] = string:split(atom_to_list(Target), "@"),
    {ok, Ip} = inet:getaddr(Host, inet),
    {port, Port, _} = erl_epmd:port_please(Name, Ip),
    %% `recbuf': a small receive buffer from the start (the kernel then
    %% takes little of what the node sends)
    Buffer = [{recbuf, B} || B <- [maps:get(recbuf, Opts, none)], B =/= none],
    {ok, S} = gen_tcp:connect(Ip, Port, [binary, {active, false}, {packet, 2} | Buffer]),
    Creation = maps:get(creation, Opts, 16#12345678),
    MyName = atom_to_binary(Me, latin1),
    %% `residue': bytes after the name, which the handshake ignores
    Residue = maps:get(residue, Opts, <<>>),
    ok = gen_tcp:send(S, <<$N, (flags()):64, Creation:32, (byte_size(MyName)):16, MyName/binary, Residue/binary>>),
    case gen_tcp:recv(S, 0, 5000) of
        {ok, <<"sok">>} -> challenge(S, Target, Me, Cookie, Creation);
        {ok, <<"salive">>} ->
            ok = gen_tcp:send(S, <<"strue">>),
            challenge(S, Target, Me, Cookie, Creation);
        {ok, <<$s, Status/binary>>} -> gen_tcp:close(S), {status, Status};
        {error, Why} -> {closed, Why}
    end.

challenge(S, Target, Me, Cookie, Creation) ->
    case gen_tcp:recv(S, 0, 5000) of
        {ok, <<$N, _Flags:64, Challenge:32, PeerCreation:32, NL:16, _:NL/binary>>} ->
            Digest = erlang:md5([Cookie, integer_to_list(Challenge)]),
            ok = gen_tcp:send(S, <<$r, 4711:32, Digest/binary>>),
            case gen_tcp:recv(S, 0, 5000) of
                {ok, <<$a, _:16/binary>>} ->
                    ok = inet:setopts(S, [{packet, 4}]),
                    Owner = self(),
                    Reader = spawn(fun() -> reader(S, Owner) end),
                    ok = gen_tcp:controlling_process(S, Reader),
                    #{sock => S, me => Me, creation => Creation, target => Target,
                      peer_creation => PeerCreation, reader => Reader};
                Other -> gen_tcp:close(S), {closed, Other}
            end;
        Other -> gen_tcp:close(S), {closed, Other}
    end.

%% Answers ticks; hands every other packet to the owner. Told to `stall',
%% it reads nothing more and only sends ticks.
reader(S, Owner) ->
    receive
        stall -> stalled(S)
    after 0 -> read(S, Owner)
    end.

read(S, Owner) ->
    case gen_tcp:recv(S, 0, 100) of
        {error, timeout} ->
            reader(S, Owner);
        {ok, <<>>} ->
            _ = gen_tcp:send(S, <<>>),
            reader(S, Owner);
        {ok, <<112, Rest/binary>>} ->
            {Ctl, Used} = binary_to_term(Rest, [used]),
            <<_:Used/binary, P/binary>> = Rest,
            Msg = case P of <<>> -> none; _ -> binary_to_term(P) end,
            Owner ! {dist, Ctl, Msg},
            reader(S, Owner);
        {error, Why} ->
            Owner ! {dist_closed, Why}
    end.

stalled(S) ->
    case gen_tcp:send(S, <<>>) of
        ok -> timer:sleep(500), stalled(S);
        {error, _} -> ok
    end.

%% The client stops reading what the node sends it, and goes on ticking.
stall(#{reader := Reader}) -> Reader ! stall, ok.

send(C, Ctl) -> raw(C, <<112, (term_to_binary(Ctl))/binary>>).
send(C, Ctl, Msg) -> raw(C, <<112, (term_to_binary(Ctl))/binary, (term_to_binary(Msg))/binary>>).
raw(#{sock := S}, Bin) -> gen_tcp:send(S, Bin).
close(#{sock := S}) -> gen_tcp:close(S).

recv(_C, Timeout) ->
    receive
        {dist, Ctl, Msg} -> {Ctl, Msg};
        {dist_closed, Why} -> {closed, Why}
    after Timeout -> timeout
    end.

flush(C) ->
    case recv(C, 300) of
        timeout -> [];
        X -> [X | flush(C)]
    end.

%% A pid of the client's own node.
pid(#{me := Me, creation := Creation}, Id) -> mkpid(Me, Id, Creation).

mkpid(Node, Id, Creation) ->
    N = atom_to_binary(Node),
    binary_to_term(<<131, 88, 119, (byte_size(N)), N/binary, Id:32, 0:32, Creation:32>>).
