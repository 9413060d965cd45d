%% @doc The decision of the `seccomp' distribution carrier: what an incoming
%% packet from a peer is, and whether the peer's rules let it in.
%%
%% The carrier refuses the atom-cache and fragment flags (and every flag it
%% does not know) during the handshake, so every packet after it is a tick
%% (empty) or `<<112, Control/term, [Payload/term]>>'.
%%
%% Default deny by capability: a peer reaches a local process only if the
%% policy names it (then by name or by pid, and only with the messages
%% {@link seccomp_dist_shapes} lets through, and monitors), or if this node
%% showed the peer its pid (see {@link seccomp_dist_caps}). The same holds
%% for messages, alias messages, links, monitors, exits and group leaders.
%% Refused signals are answered as the VM answers a signal to a process that
%% does not exist (`noproc'), so the peer does not hang.
%%
%% A control message's operation is read from its first bytes: unknown ones
%% are refused undecoded. Otherwise the control term is scanned ({@link
%% seccomp_dist_etf}) before it is decoded; the payload only once the control
%% term is accepted, and it is decoded only when the message has to be looked
%% into (a named destination, a spawn's arguments, a fun). Atoms either would
%% create come out of the peer node's budget ({@link seccomp_dist_budget})
%% before they are created.
-module(seccomp_dist_filter).

-export([decide/2, context/3, sender/1, spawn_refusal/3, doors/0]).
-export_type([context/0, decision/0]).

-type context() :: #{node := node(), rules := seccomp_dist_policy:node_rules(),
                     caps := seccomp_dist_caps:conn(), atoms_left := non_neg_integer(),
                     backed_up => fun(() -> boolean())}.
-type decision() :: {accept, atom(), NewAtoms :: non_neg_integer()}
                  | {refuse, atom(), Why :: term(), Reply :: none | binary()}
                  | {malformed, term()}.

-define(PASS_THROUGH, 112).
-define(NOPROC, noproc).
%% ALTACT_SIG_SEND flags (OTP 28+).
-define(ALTACT_PRIO, 1).
-define(ALTACT_TOKEN, 2).
-define(ALTACT_ALIAS, 4).
-define(ALTACT_NAME, 8).
-define(ALTACT_EXIT, 16).
-define(GLOBAL_RESOLVERS, [{global, random_exit_name, 3}, {global, random_notify_name, 3},
                           {global, notify_all_name, 3}]).
%% Spawn options a peer may ask for; anything else (heap sizes, priorities
%% above normal, ...) is refused.
-define(SPAWN_OPTS, [link, monitor]).
%% Calls a server may have waiting before a peer's next one is refused.
-define(CALL_BACKLOG, 1024).

%% The control messages of OTP 25-29 are 1-37 but these (old node links,
%% trace tokens of R9, ...); any other is refused before its control term
%% is decoded.
-define(UNUSED_OPS, [9, 10, 11, 14, 15, 17]).

%% @doc The context a connection's receiver decides in.
-spec context(node(), seccomp_dist_policy:node_rules(), seccomp_dist_caps:conn()) -> context().
context(Node, Rules, Caps) ->
    #{node => Node, rules => Rules, caps => Caps,
      atoms_left => seccomp_dist_budget:left(Node, maps:get(max_new_atoms, Rules))}.

%% @doc Classify one incoming packet and decide on it; also how many new
%% atoms deciding and delivering it creates. Atoms are charged to the
%% peer's budget ({@link seccomp_dist_budget}) before a term is decoded:
%% the control term of a known control message always, a payload once its
%% header is accepted. An exception while deciding (a bug, or a term the
%% filter did not expect) makes the packet malformed, never the receiver crash.
-spec decide(binary(), context()) -> {decision(), NewAtoms :: non_neg_integer()}.
decide(<<>>, _C) ->
    {{accept, tick, 0}, 0};
decide(Packet, C) ->
    try
        decide_packet(Packet, C)
    catch
        Class:_Why:Stack ->
            {{malformed, {filter_error, Class, where(Stack)}}, 0}
    end.

%% Where the filter failed, without the arguments (they are the peer's data).
where([{M, F, Args, _} | _]) when is_list(Args) -> {M, F, length(Args)};
where([{M, F, Arity, _} | _]) -> {M, F, Arity};
where(_) -> unknown.

decide_packet(<<?PASS_THROUGH, Rest/binary>>, C) ->
    case control_op(Rest) of
        {ok, Op} ->
            case Op >= 1 andalso Op =< 37 andalso not lists:member(Op, ?UNUSED_OPS) of
                true -> known_control(Rest, C);
                false -> {{refuse, unknown_control, Op, none}, 0}
            end;
        error ->
            {{malformed, bad_control}, 0}
    end;
decide_packet(_Packet, _C) ->
    {{malformed, not_pass_through}, 0}.

%% The operation of a control term, read from its first bytes: a tuple
%% whose first element is an integer.
control_op(<<131, 104, Arity, 97, Op, _/binary>>) when Arity > 0 -> {ok, Op};
control_op(<<131, 104, Arity, 98, Op:32/signed, _/binary>>) when Arity > 0 -> {ok, Op};
control_op(<<131, 105, Arity:32, 97, Op, _/binary>>) when Arity > 0 -> {ok, Op};
control_op(<<131, 105, Arity:32, 98, Op:32/signed, _/binary>>) when Arity > 0 -> {ok, Op};
control_op(_) -> error.

known_control(Rest, #{atoms_left := Left, rules := #{max_message_bytes := Max}} = C) ->
    case seccomp_dist_etf:scan(Rest, Left) of
        {ok, #{memory := Mem}} when Mem > Max ->
            {{malformed, {control_too_large, Mem}}, 0};
        {ok, #{funs := 0, size := Size, new_atoms := New}} ->
            N = length(New),
            case charge(N, C) of
                ok ->
                    <<CtlBin:Size/binary, Payload/binary>> = Rest,
                    try
                        Ctl = decode(CtlBin),
                        seccomp_dist_control:well_formed(Ctl)
                            orelse throw({malformed, {bad_control_fields, element(1, Ctl)}}),
                        control(Ctl, Payload, C#{atoms_left := Left - N})
                    of
                        {accept, Kind, M} -> {{accept, Kind, N + M}, N + M};
                        Other -> {Other, N}
                    catch
                        throw:{malformed, _} = M -> {M, N}
                    end;
                atom_budget ->
                    {{refuse, control, atom_budget, none}, 0}
            end;
        {ok, _} -> {{malformed, fun_in_control}, 0};
        {error, atom_budget} -> {{refuse, control, atom_budget, none}, 0};
        {error, Why} -> {{malformed, Why}, 0}
    end.

%% Take `N' new atoms from the peer's budget.
charge(N, #{node := Node, rules := #{max_new_atoms := Max}}) ->
    seccomp_dist_budget:charge(Node, N, Max).

%% The scan found the term's end, but not every error (a bad float, an atom
%% that is not UTF-8): those disconnect like any malformed packet.
decode(Bin) ->
    try binary_to_term(Bin)
    catch error:badarg -> throw({malformed, undecodable})
    end.

%%% Control messages ------------------------------------------------------------------

%% Links
control({1, From, To}, P, C) -> signal(link, From, To, P, C);
control({4, From, To}, P, C) -> signal(unlink, From, To, P, C);
control({35, _Id, From, To}, P, C) -> signal(unlink, From, To, P, C);
control({36, _Id, From, To}, P, C) -> signal(unlink, From, To, P, C);
%% Exits through links, and exit/2
control({3, From, To, _Reason}, P, C) -> signal(exit, From, To, P, C);
control({13, From, To, _Token, _Reason}, P, C) -> signal(exit, From, To, P, C);
control({24, From, To}, P, C) -> signal(exit, From, To, {reason, P}, C);
control({25, From, To, _Token}, P, C) -> signal(exit, From, To, {reason, P}, C);
control({8, From, To, _Reason}, P, C) -> signal(exit2, From, To, P, C);
control({18, From, To, _Token, _Reason}, P, C) -> signal(exit2, From, To, P, C);
control({26, From, To}, P, C) -> signal(exit2, From, To, {reason, P}, C);
control({27, From, To, _Token}, P, C) -> signal(exit2, From, To, {reason, P}, C);
control({7, From, To}, P, C) -> signal(group_leader, From, To, P, C);
%% Monitors
%% A peer's monitor is named by a reference its own node made; the runtime
%% takes any reference for the monitor it names, this node's own included
%% (a demonitor with one of a local process's references cancels that
%% process's monitor, and guessed ones crashed the runtime).
control({19, From, To, Ref}, P, #{node := Node} = C) when node(Ref) =:= Node ->
    signal({monitor, Ref}, From, To, P, C);
control({20, From, To, Ref}, P, #{node := Node} = C) when node(Ref) =:= Node ->
    signal(demonitor, From, To, P, C);
control({Op, _From, _To, Ref}, _P, _C) when Op =:= 19; Op =:= 20 ->
    {refuse, monitor, {not_own_reference, node(Ref)}, none};
control({21, Proc, To, Ref, _Reason}, P, C) -> monitor_exit(Proc, To, Ref, P, C);
control({28, Proc, To, Ref}, P, C) -> monitor_exit(Proc, To, Ref, {reason, P}, C);
control({5}, <<>>, _C) -> {accept, node_link, 0};
%% Spawning
control({31, ReqId, To, Flags, Result}, P, C) -> spawn_reply(ReqId, To, Result, Flags, P, C);
control({32, ReqId, To, Flags, Result, _Token}, P, C) -> spawn_reply(ReqId, To, Result, Flags, P, C);
control({29, ReqId, From, GL, MFA, Opts}, P, C) -> spawn_request(ReqId, From, GL, MFA, Opts, P, C);
control({30, ReqId, From, GL, MFA, Opts, _Token}, P, C) -> spawn_request(ReqId, From, GL, MFA, Opts, P, C);
%% Messages
control({2, _Unused, To}, P, C) -> message(To, P, C);
control({12, _Unused, To, _Token}, P, C) -> message(To, P, C);
control({22, _From, To}, P, C) -> message(To, P, C);
control({23, _From, To, _Token}, P, C) -> message(To, P, C);
control({6, _From, _Unused, Name}, P, C) -> message(Name, P, C);
control({16, _From, _Unused, Name, _Token}, P, C) -> message(Name, P, C);
control({33, _From, Alias}, P, C) -> message(Alias, P, C);
control({34, _From, Alias, _Token}, P, C) -> message(Alias, P, C);
%% OTP 28+: one form for alias, named and priority messages and priority exits.
control({37, Flags, From, To}, P, C) -> altact(Flags, From, To, P, C);
control({37, Flags, From, To, _Token}, P, C) -> altact(Flags, From, To, P, C);
control(Ctl, _P, _C) -> {refuse, unknown_control, element(1, Ctl), none}.

%% A spawn request's monitor is set up only if the spawn succeeded and the
%% reply's flags say so (2): otherwise the one recorded for the request
%% will never fire.
spawn_reply(ReqId, To, Result, Flags, P, #{caps := Caps} = C) ->
    _ = is_pid(Result) andalso is_integer(Flags) andalso Flags band 2 =/= 0
        orelse seccomp_dist_caps:forget_monitor(Caps, ReqId),
    signal(spawn_reply, none, To, P, C).

%% A monitor of a local process on the peer's process fired. Only a monitor
%% this node set up on that peer (its reference, sent in the peer's
%% direction and recorded by the sender, see {@link seccomp_dist_caps}) may
%% fire, once, naming the process it watches (`pg' takes the process a
%% monitor exit names for the one its monitor watched). When it is the local `pg''s on a peer's scope, `pg' forgets
%% the scope, and so does the connection's view of it.
monitor_exit(Proc, To, Ref, P, #{caps := Caps} = C) ->
    case seccomp_dist_caps:monitor_fired(Caps, Ref, Proc) of
        false ->
            {refuse, monitor, not_a_monitor_of_this_node, none};
        true ->
            case signal(monitor_exit, none, To, P, C) of
                {accept, _, _} = Accepted when is_pid(Proc) ->
                    _ = To =:= whereis(pg) andalso seccomp_dist_pg:scope_down(Proc),
                    Accepted;
                Other -> Other
            end
    end.

altact(Flags, _From, _To, _P, _C) when not is_integer(Flags); Flags >= 32 ->
    {refuse, unknown_control, {37, Flags}, none};
altact(Flags, From, To, P, C) when Flags band ?ALTACT_EXIT =/= 0 ->
    signal(exit2, From, To, {reason, P}, C);
altact(Flags, _From, To, P, C) when Flags band ?ALTACT_ALIAS =/= 0, is_reference(To);
                                    Flags band ?ALTACT_NAME =/= 0, is_atom(To);
                                    Flags band (?ALTACT_ALIAS bor ?ALTACT_NAME) =:= 0, is_pid(To) ->
    message(To, P, C);
altact(Flags, _From, To, _P, _C) ->
    {refuse, unknown_control, {37, Flags, To}, none}.

%%% Signals ----------------------------------------------------------------------------

%% A signal from the peer's process `From' (or `none' when the control message
%% names no sender) to the local process `To'.
signal(Kind, From, To, Payload, #{node := Node, rules := R} = C) ->
    Flag = flag(Kind),
    if
        From =/= none, not is_pid(From) -> {malformed, {bad_sender, Kind}};
        From =/= none, node(From) =/= Node -> refuse(Kind, From, To, not_own_pid);
        true ->
            case maps:get(Flag, R) of
                false -> refuse(Kind, From, To, not_allowed);
                true -> reachable_signal(Kind, Flag, From, To, Payload, C)
            end
    end.

reachable_signal(Kind, Flag, From, To, Payload, C) ->
    case reach(To, C) of
        given when Flag =/= monitor, Flag =/= send, is_pid(To) ->
            case seccomp_dist_system:is_system(To) of
                false -> with_reason(Kind, Payload, C);
                true -> refuse(Kind, From, To, system_process)
            end;
        given -> with_reason(Kind, Payload, C);
        {name, _} when Flag =:= monitor -> with_reason(Kind, Payload, C);
        {name, Name} -> linked_exit(Kind, From, To, {named_process, Name}, Payload, C);
        {system_process, _} = Why -> linked_exit(Kind, From, To, Why, Payload, C);
        Other -> refuse(Kind, From, To, Other)
    end.

%% An exit through a link a registered process made itself to the sender
%% is the link's: it passes. (Only registered processes are looked at: the
%% cost of reading a process's links grows with them.)
linked_exit(exit, From, To, Why, Payload, C) when is_pid(From) ->
    Local = if
                is_pid(To) -> To;
                true -> whereis(To)
            end,
    Linked = is_pid(Local) andalso case erlang:process_info(Local, links) of
                                       {links, Links} -> lists:member(From, Links);
                                       undefined -> false
                                   end,
    case Linked of
        true -> with_reason(exit, Payload, C);
        false -> refuse(exit, From, To, Why)
    end;
linked_exit(Kind, From, To, Why, _Payload, _C) ->
    refuse(Kind, From, To, Why).

flag({monitor, _}) -> monitor;
flag(demonitor) -> monitor;
flag(monitor_exit) -> monitor;
flag(unlink) -> link;
flag(spawn_reply) -> send;
flag(Kind) -> Kind.

kind({monitor, _}) -> monitor;
kind(K) -> K.

%% Signals whose reason travels as a payload: the reason is scanned like any
%% payload, but never looked into.
with_reason(Kind, {reason, Payload}, C) ->
    case scan(Payload, C) of
        {ok, _Info, Atoms} -> {accept, kind(Kind), Atoms};
        Refused -> refused(kind(Kind), Refused)
    end;
with_reason(Kind, <<>>, _C) -> {accept, kind(Kind), 0};
with_reason(Kind, _Payload, _C) -> {malformed, {payload_on, kind(Kind)}}.

%% Refused links and monitors are answered as for a process that does not
%% exist: the peer's process gets its exit signal or 'DOWN' message.
refuse(link, From, To, Why) ->
    {refuse, link, Why, reply({3, To, From, ?NOPROC})};
refuse({monitor, Ref}, From, To, Why) ->
    {refuse, monitor, Why, reply({21, To, From, Ref, ?NOPROC})};
refuse(Kind, _From, _To, Why) ->
    {refuse, kind(Kind), Why, none}.

reply(Ctl) -> <<?PASS_THROUGH, (term_to_binary(Ctl))/binary>>.

reply(Ctl, Msg) -> <<(reply(Ctl))/binary, (term_to_binary(Msg))/binary>>.

%% A refused io request is answered as an io server answers one it does
%% not support, so the peer's process does not wait for ever.
io_refusal({io_request, From, ReplyAs, _Request}, #{node := Node})
  when is_pid(From), node(From) =:= Node, is_reference(ReplyAs) ->
    reply({2, '', From}, {io_reply, ReplyAs, {error, enotsup}});
io_refusal(_Msg, _C) ->
    none.

%% @doc The packet that answers the peer's spawn request `ReqId' of process
%% `From' with a failure (`Why').
-spec spawn_refusal(reference(), pid(), atom()) -> binary().
spawn_refusal(ReqId, From, Why) -> reply({31, ReqId, From, 0, Why}).

%% @doc The peer's process a control message comes from, when it waits for
%% what becomes of it: the sender of a message, or the requester of a spawn.
-spec sender(tuple()) -> {message, term()} | {spawn_request, term(), term()} | none.
sender({Op, From, _To}) when Op =:= 22; Op =:= 33 -> {message, From};
sender({Op, From, _, _}) when Op =:= 6; Op =:= 23; Op =:= 34 -> {message, From};
sender({16, From, _Unused, _Name, _Token}) -> {message, From};
sender({37, Flags, From, _To}) when is_integer(Flags), Flags band ?ALTACT_EXIT =:= 0 -> {message, From};
sender({37, Flags, From, _To, _Token}) when is_integer(Flags), Flags band ?ALTACT_EXIT =:= 0 -> {message, From};
sender({29, ReqId, From, _GL, _MFA, _Opts}) -> {spawn_request, ReqId, From};
sender({30, ReqId, From, _GL, _MFA, _Opts, _Token}) -> {spawn_request, ReqId, From};
sender(_Ctl) -> none.

%% How the peer may reach the local process or alias `To': `given' (it holds
%% it), `{name, Name}' (a registered process, judged by its name), else why not.
reach(To, #{caps := Caps} = C) when is_pid(To) ->
    case node(To) =:= node() of
        false -> not_local;
        true ->
            case seccomp_dist_system:registered_name(To) of
                none ->
                    case seccomp_dist_caps:holds(Caps, To) of
                        true -> held(To, C);
                        false -> not_given
                    end;
                Name -> by_name(Name, C)
            end
    end;
reach(To, #{caps := Caps} = C) when is_reference(To) ->
    case node(To) =:= node() andalso seccomp_dist_caps:holds(Caps, To) of
        true -> alias_owner(seccomp_dist_caps:owner(Caps, To), C);
        false -> not_given
    end;
reach(To, #{rules := #{names := Names}}) when is_atom(To) ->
    case lists:member(To, Names) andalso whereis(To) =/= undefined of
        true -> {name, To};
        false -> {not_named, To}
    end;
reach(_To, _C) ->
    bad_destination.

%% Registered processes the policy does not name are system processes:
%% never reachable, whoever was shown them.
by_name(Name, #{rules := #{names := Names}}) ->
    case lists:member(Name, Names) of
        true -> {name, Name};
        false -> {system_process, Name}
    end.

%% A pid the peer holds that the receiver's copy of the registry does not
%% name: the runtime's and OTP's own processes are refused the doors (see
%% `content'), the others are the peer's to message.
held(Pid, C) ->
    case process_kind(Pid, C) of
        {named, Name} -> by_name(Name, C);
        _PlainOrSystem -> given
    end.

%% An alias is reached as the process that made it is (the one that sent it
%% to the peer: a call's caller): a named one by its name (it gets the
%% replies to its calls, and what else the name's protocol takes), never one of
%% the runtime's or OTP's own (`global''s helpers make calls to peers, and
%% the runtime takes what arrives at their aliases as their replies).
alias_owner(undefined, _C) ->
    unowned_alias;
alias_owner(Owner, C) ->
    case process_kind(Owner, C) of
        plain -> given;
        system -> {system_process, Owner};
        {named, Name} -> by_name(Name, C)
    end.

%% What a local process is: `{named, Name}', `system' or `plain' (found so
%% in this generation, or now: neither named in the registry itself, since
%% a server may have registered after the receiver's copy was made, nor the
%% runtime's or OTP's own; the driver is told, and delivers to it and its
%% aliases on its own).
process_kind(Pid, #{caps := Caps}) ->
    case seccomp_dist_system:registered_name(Pid) of
        none ->
            case seccomp_dist_caps:is_plain(Caps, Pid) of
                true -> plain;
                false ->
                    case seccomp_dist_system:current_name(Pid) of
                        none -> unnamed_kind(Pid, Caps);
                        Name -> {named, Name}
                    end
            end;
        Name -> {named, Name}
    end.

unnamed_kind(Pid, Caps) ->
    case seccomp_dist_system:is_system(Pid) of
        true -> system;
        false ->
            ok = seccomp_dist_caps:found_plain(Caps, Pid),
            plain
    end.

%%% Messages ---------------------------------------------------------------------------

message(To, Payload, #{rules := R} = C) ->
    case reach(To, C) of
        given when is_reference(To) -> content(send, none, Payload, C);
        given ->
            case maps:get(send, R) of
                true -> content(send, none, Payload, C);
                false -> {refuse, send, not_allowed, none}
            end;
        {name, Name} -> content(send, Name, Payload, C#{to => To});
        Why -> {refuse, send, {destination, Why}, none}
    end.

%% The payload of an accepted destination. Messages to a named process are
%% decoded and judged by shape; others when they hold funs, or when their
%% outer tuple is tagged as a door (see {@link seccomp_dist_shapes:door/2}).
content(Kind, Name, Payload, #{rules := R} = C) ->
    case scan(Payload, C) of
        {ok, #{funs := Funs}, Atoms} ->
            case Name =:= none andalso (Funs =:= 0 orelse maps:get(funs, R))
                andalso not door_tag(Payload) of
                true -> {accept, Kind, Atoms};
                false ->
                    Msg = decode(Payload),
                    case judge(Name, Msg, Funs, C) of
                        ok -> {accept, Kind, Atoms};
                        {refused, Why} -> {refuse, Kind, Why, io_refusal(Msg, C)}
                    end
            end;
        Refused ->
            refused(Kind, Refused)
    end.

%% (`Funs': how many funs the scan found in the message.)
judge(Name, Msg, Funs, #{node := Node, rules := R} = C) ->
    case Funs =:= 0 orelse maps:get(funs, R) orelse not forbidden_fun(Msg, R) of
        false -> {refused, carries_fun};
        true when Name =:= none -> seccomp_dist_shapes:door(Msg, Node);
        true -> shape(Name, Msg, C)
    end.

%% Whether a payload's outer term is a tuple whose first element is one of
%% the atoms door messages start with, read from its first bytes (any
%% encoding of a tuple and of an atom).
door_tag(<<131, 104, _Arity, Atom/binary>>) -> door_atom(Atom);
door_tag(<<131, 105, _Arity:32, Atom/binary>>) -> door_atom(Atom);
door_tag(_) -> false.

door_atom(<<T, L, Name:L/binary, _/binary>>) when T =:= 119; T =:= 115 -> door_name(Name);
door_atom(<<T, L:16, Name:L/binary, _/binary>>) when T =:= 118; T =:= 100 -> door_name(Name);
door_atom(_) -> false.

door_name(Name) -> lists:member(Name, doors()).

%% @doc The atoms a door message's outer tuple starts with (a request to an
%% OTP server's protocol: `gen_server', `sys', an exit, the I/O and file
%% protocols), as UTF-8 text. The carrier's driver gets them with its rules
%% and leaves every message that starts with one to the filter.
-spec doors() -> [binary()].
doors() -> [<<"$gen_call">>, <<"$gen_cast">>, <<"system">>, <<"EXIT">>, <<"io_request">>, <<"file_request">>].

%% A message judged by the name `Name' goes to the process registered
%% under it, but for replies to calls: `global''s helpers, judged as
%% global_name_server, take only the answers to their own calls (anything
%% else reaches their catch-all, which logs the whole message).
shape(Name, Msg, #{node := Node} = C) ->
    case seccomp_dist_shapes:check(Name, Msg, Node) of
        {reply, Ref, Takes} -> reply(Name, Ref, Takes, C);
        {refused, _} = Refused -> Refused;
        Verdict ->
            case process_of(maps:get(to, C, Name), C) =:= whereis(Name) of
                true -> server_verdict(Name, Verdict, C);
                false -> {refused, {Name, replies_only}}
            end
    end.

server_verdict(_Name, ok, _C) -> ok;
server_verdict(Name, {rpc, MFA}, C) ->
    case keeps_up(Name) of
        true -> allowed_call(MFA, C);
        false -> {refused, {server_busy, Name}}
    end;
server_verdict(_Name, {relay, To, Inner}, C) ->
    case reach(To, C) of
        {name, To} -> shape(To, Inner, C#{to => To});
        Why -> {refused, {relay, Why}}
    end.

%% A reply goes to the process that made the call: the one that showed the
%% peer the reference it is tagged with, reached at its pid or an alias.
reply(Name, Ref, Takes, C) ->
    Caller = process_of(Ref, C),
    case is_pid(Caller) andalso process_of(maps:get(to, C, none), C) =:= Caller
        andalso process_kind(Caller, C) =:= {named, Name} of
        false -> {refused, {Name, not_a_reply_to_its_call}};
        true ->
            case Takes(Caller) of
                true -> ok;
                false -> {refused, {Name, not_an_answer_to_its_call}}
            end
    end.

%% The local process a message to `To' goes to: a pid itself, the process
%% registered under a name, or the one that showed the peer a reference
%% (the owner of an alias, or the caller whose request it tags).
process_of(To, _C) when is_pid(To) -> To;
process_of(To, _C) when is_atom(To) -> whereis(To);
process_of(To, #{caps := Caps}) when is_reference(To) -> seccomp_dist_caps:owner(Caps, To);
process_of(_To, _C) -> undefined.

%% A payload must be one whole term, within the atom budget and the memory
%% bound. Its new atoms are charged here, before anyone decodes it: the
%% filter to judge it, or the runtime to deliver it.
scan(Payload, #{atoms_left := Left, rules := #{max_message_bytes := Max}} = C) ->
    case seccomp_dist_etf:scan(Payload, Left) of
        {ok, #{size := Size}} when Size =/= byte_size(Payload) -> {malformed, trailing_data};
        {ok, #{memory := Mem}} when Mem > Max -> {too_large, Mem};
        {ok, #{new_atoms := New} = Info} ->
            Atoms = length(New),
            case charge(Atoms, C) of
                ok -> {ok, Info, Atoms};
                atom_budget -> atom_budget
            end;
        {error, atom_budget} -> atom_budget;
        {error, Why} -> {malformed, Why}
    end.

refused(_Kind, {malformed, Why}) -> {malformed, Why};
refused(Kind, Why) -> {refuse, Kind, Why, none}.

%%% Spawn requests ---------------------------------------------------------------------

%% rpc:call/erpc:call/spawn arrive as spawn requests. The VM applies the
%% payload's argument list, so that is what is checked; erpc wraps the real call.
spawn_request(ReqId, From, GL, MFA, Opts, Payload, #{node := Node, rules := R} = C) ->
    Refuse = fun(Why) -> {refuse, spawn_request, Why, spawn_refusal(ReqId, From, notsup)} end,
    if
        not is_pid(From) -> {malformed, bad_spawn_request};
        node(From) =/= Node -> {refuse, spawn_request, not_own_pid, none};
        %% the new process's output goes to its group leader: the peer's
        not is_pid(GL) -> Refuse(bad_group_leader);
        node(GL) =:= node() -> Refuse(local_group_leader);
        true ->
            case spawn_opts_ok(Opts) of
                false -> Refuse(bad_spawn_options);
                true ->
                    case scan(Payload, C) of
                        {ok, #{funs := Funs}, Atoms} ->
                            Args = decode(Payload),
                            case spawned(MFA, Args) of
                                {ok, Call} ->
                                    case allowed_call(Call, C) of
                                        {refused, Why} -> Refuse(Why);
                                        ok when Funs > 0 ->
                                            case maps:get(funs, R) orelse not forbidden_fun(Args, R) of
                                                true -> {accept, spawn_request, Atoms};
                                                false -> Refuse(carries_fun)
                                            end;
                                        ok -> {accept, spawn_request, Atoms}
                                    end;
                                {error, Why} -> Refuse(Why)
                            end;
                        {malformed, _} = M -> M;
                        Why -> Refuse(Why)
                    end
            end
    end.

%% A call the rules' `rpc' list allows starts a process here that answers
%% the peer: not while the peer is not reading what it is sent (the
%% context's `backed_up'), or each such process would wait on the
%% connection, holding its memory.
allowed_call(MFA, #{rules := R} = C) ->
    case rpc_allowed(MFA, R) of
        true -> runs_for_peer(C);
        false -> {refused, {rpc_not_allowed, MFA}}
    end.

%% A call waits in its server's queue before the server starts its process,
%% and nothing of it shows in the peer's output until then (so a peer that
%% reads nothing is not yet seen to stall): calls sent faster than the
%% server takes them are refused past `?CALL_BACKLOG' waiting.
keeps_up(Name) ->
    case whereis(Name) of
        Pid when is_pid(Pid) ->
            case process_info(Pid, message_queue_len) of
                {message_queue_len, Waiting} -> Waiting < ?CALL_BACKLOG;
                undefined -> true
            end;
        _ -> true
    end.

runs_for_peer(#{backed_up := BackedUp}) ->
    case BackedUp() of
        true -> {refused, peer_not_reading};
        false -> ok
    end;
runs_for_peer(_C) ->
    ok.

spawn_opts_ok(Opts) ->
    seccomp_dist_owned:all(fun(O) -> lists:member(O, ?SPAWN_OPTS) orelse monitor_opt(O) end, Opts).

monitor_opt({monitor, L}) -> seccomp_dist_owned:proper(L);
monitor_opt(_) -> false.

spawned({M, F, A}, Args) when is_atom(M), is_atom(F) ->
    case seccomp_dist_owned:length(Args) =:= A of
        false -> {error, bad_arity};
        true ->
            case {M, F, Args} of
                {erpc, execute_call, [_Ref, M1, F1, A1]} -> inner_call(M1, F1, A1);
                {erpc, execute_cast, [M1, F1, A1]} -> inner_call(M1, F1, A1);
                {erpc, _, _} -> {error, bad_erpc_args};
                _ -> {ok, {M, F, A}}
            end
    end;
spawned(_MFA, _Args) ->
    {error, bad_mfa}.

%% erpc wraps the real call.
inner_call(M, F, A) ->
    case seccomp_dist_owned:length(A) of
        -1 -> {error, bad_erpc_args};
        N -> {ok, {M, F, N}}
    end.

rpc_allowed({M, F, A} = MFA, #{rpc := Allowed}) when is_atom(M), is_atom(F), is_integer(A) ->
    lists:any(fun(P) -> mfa_match(P, MFA) end, Allowed);
rpc_allowed(_MFA, _R) ->
    false.

mfa_match(M, {M, _, _}) -> true;
mfa_match({M, F, A}, {M, F2, A2}) -> (F =:= '_' orelse F =:= F2) andalso (A =:= '_' orelse A =:= A2);
mfa_match(_, _) -> false.

%%% Funs ---------------------------------------------------------------------------------

%% A closure from another node is code to run here. External funs are only
%% names: they are let through when the rpc rules allow them, or when they
%% are `global''s name-clash resolvers, which `global:register_name' sends.
%% The term is walked with a stack of its own, a few words for each term it
%% holds (a call per level of nesting, or a list per tuple, would take many
%% times the term's own size in a peer's deeply nested message).
forbidden_fun(T, R) -> any_forbidden([T], R).

any_forbidden([], _R) -> false;
any_forbidden([T | Rest], R) when is_function(T) -> forbidden(T, R) orelse any_forbidden(Rest, R);
any_forbidden([[H | T] | Rest], R) -> any_forbidden([H, T | Rest], R);
any_forbidden([T | Rest], R) when is_tuple(T) -> any_forbidden(elements(T, tuple_size(T), Rest), R);
any_forbidden([T | Rest], R) when is_map(T) ->
    any_forbidden(maps:fold(fun(K, V, Acc) -> [K, V | Acc] end, Rest, T), R);
any_forbidden([_ | Rest], R) -> any_forbidden(Rest, R).

elements(_T, 0, Acc) -> Acc;
elements(T, I, Acc) -> elements(T, I - 1, [element(I, T) | Acc]).

forbidden(T, R) ->
    case erlang:fun_info(T, type) of
        {type, external} ->
            {module, M} = erlang:fun_info(T, module),
            {name, F} = erlang:fun_info(T, name),
            {arity, A} = erlang:fun_info(T, arity),
            not (lists:member({M, F, A}, ?GLOBAL_RESOLVERS) orelse rpc_allowed({M, F, A}, R));
        {type, local} ->
            not global_resolver(T)
    end.

%% Inside `global', `fun random_exit_name/3' is a local fun with no
%% environment. One from another release may not resolve here (it has no
%% name then): `global' calls resolvers inside a catch, so it is harmless.
global_resolver(T) ->
    {module, M} = erlang:fun_info(T, module),
    {env, Env} = erlang:fun_info(T, env),
    {arity, A} = erlang:fun_info(T, arity),
    M =:= global andalso Env =:= [] andalso A =:= 3
        andalso case erlang:fun_info(T, name) of
                    {name, N} when is_atom(N) ->
                        lists:any(fun({_, F, _}) -> string:find(atom_to_list(N), atom_to_list(F)) =/= nomatch end,
                                  ?GLOBAL_RESOLVERS);
                    _ -> true
                end.
