%% A hand-made distribution client for tests: it speaks the handshake and
%% sends packets a real node never would. It needs no distribution of its
%% own (only epmd and the cookie).
-module(seccomp_dist_raw).

-export([connect/3, connect/4, send/2, send/3, raw/2, close/1, recv/2, flush/1, pid/2, mkpid/3, stall/1]).
-export([send_cached/3, cached_packet/2, header/1]).

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
%% target ends the handshake. With `atom_cache => true' the client offers
%% the atom cache: every packet then starts with a distribution header
%% (see {@link send_cached/4}).
connect(Target, Me, Cookie) -> connect(Target, Me, Cookie, #{}).

connect(Target, Me, Cookie, Opts) ->
    [Name, Host] = string:split(atom_to_list(Target), "@"),
    {ok, Ip} = inet:getaddr(Host, inet),
    {port, Port, _} = erl_epmd:port_please(Name, Ip),
    {ok, S} = gen_tcp:connect(Ip, Port, [binary, {active, false}, {packet, 2}]),
    Creation = maps:get(creation, Opts, 16#12345678),
    MyName = atom_to_binary(Me, latin1),
    %% `residue': bytes after the name, which the handshake ignores
    Residue = maps:get(residue, Opts, <<>>),
    Flags = case maps:get(atom_cache, Opts, false) of
                true -> flags() bor ?DFLAG_DIST_HDR_ATOM_CACHE;
                false -> flags()
            end,
    ok = gen_tcp:send(S, <<$N, Flags:64, Creation:32, (byte_size(MyName)):16, MyName/binary, Residue/binary>>),
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
        {ok, <<131, 68, _/binary>> = Packet} ->
            Owner ! {dist_cached, Packet},
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

%% A packet with a distribution header (a client connected with
%% `atom_cache'). `Entries' make the header: `{Slot, Name}' puts the atom
%% `Name' (a binary) into the slot (0 to 2047), `{Slot}' names what the slot
%% holds. `Terms' (the control term, then the payload if any) are encoded
%% without version bytes, `{ref, I}' in them as an atom cache reference to
%% the header's `I'th entry.
send_cached(C, Entries, Terms) -> raw(C, cached_packet(Entries, Terms)).

cached_packet(Entries, Terms) ->
    <<(header(Entries))/binary, (<< <<(cached(T))/binary>> || T <- Terms >>)/binary>>.

header([]) ->
    <<131, 68, 0>>;
header(Entries) ->
    Nibbles = [case E of
                   {Slot, _Name} -> 8 bor (Slot bsr 8);
                   {Slot} -> Slot bsr 8
               end || E <- Entries] ++ [0],
    Refs = << <<(case E of
                     {Slot, Name} -> <<(Slot band 255), (byte_size(Name)), Name/binary>>;
                     {Slot} -> <<(Slot band 255)>>
                 end)/binary>> || E <- Entries >>,
    <<131, 68, (length(Entries)), (nibbles(Nibbles))/binary, Refs/binary>>.

nibbles([Lo, Hi | More]) -> <<(Lo bor (Hi bsl 4)), (nibbles(More))/binary>>;
nibbles([Lo]) -> <<Lo>>;
nibbles([]) -> <<>>.

%% Each `{ref, I}' is encoded as an atom only it uses, whose encoding is
%% then replaced by the reference.
cached(Term) ->
    <<131, Bin/binary>> = term_to_binary(mark(Term), [{minor_version, 2}]),
    lists:foldl(fun(I, B) ->
                        Text = atom_to_binary(marker(I)),
                        binary:replace(B, <<119, (byte_size(Text)), Text/binary>>, <<82, I>>, [global])
                end, Bin, lists:seq(0, 255)).

marker(I) -> list_to_atom("$seccomp_raw_ref_" ++ integer_to_list(I)).

mark({ref, I}) when is_integer(I) -> marker(I);
mark(T) when is_tuple(T) -> list_to_tuple([mark(E) || E <- tuple_to_list(T)]);
mark(L) when is_list(L) -> [mark(E) || E <- L];
mark(T) -> T.

send(C, Ctl) -> raw(C, <<112, (term_to_binary(Ctl))/binary>>).
send(C, Ctl, Msg) -> raw(C, <<112, (term_to_binary(Ctl))/binary, (term_to_binary(Msg))/binary>>).
raw(#{sock := S}, Bin) -> gen_tcp:send(S, Bin).
close(#{sock := S}) -> gen_tcp:close(S).

recv(_C, Timeout) ->
    receive
        {dist, Ctl, Msg} -> {Ctl, Msg};
        {dist_cached, Packet} -> {cached, Packet};
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
