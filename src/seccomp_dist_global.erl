%% @doc What a peer may send to `global_name_server' and `global_group':
%% exactly the messages that `global' and `global_group' send between
%% nodes (as in OTP's global.erl and global_group.erl), with every field
%% of the type the local server assumes, so that a message let in never
%% crashes it (both run under `kernel_sup', which stops the node when a
%% child dies). Messages those servers only get from their own node's
%% helpers (`exchange_ops', `lock_is_set', `send_res', `find_name_res',
%% `registered_names_res', ...) are refused: they make the server send to
%% a destination the message names.
%%
%% Ownership: pids standing for the sending side are the peer's; a name's
%% pid is the peer's, or a local pid already registered here under that
%% name (a peer repeats what this node told it, nothing else), so a peer
%% never makes `global' resolve a clash against a local process it picked.
%% A peer may unregister only its own names. Which funs a resolve method
%% may be is the filter's fun rule ({@link seccomp_dist_filter}). The
%% checks run in the connection's receiver, one connection a process, in
%% the order the packets came (the steps of a sync are remembered there).
-module(seccomp_dist_global).

-export([check/3, answers/2]).

%% The oldest protocol version of `global' that OTP 25 and later accept.
-define(MIN_GLOBAL_VSN, 5).
%% Steps of syncs one connection's peer may send (two a sync).
-define(SYNCS, 64).

%% @doc Whether `Msg' from node `Peer' may go to the local process `Name'
%% (`global_name_server' or `global_group'); `{reply, Ref, Reply}': if it
%% goes to the local process that showed the peer `Ref' making a call, and
%% that process takes `Reply' ({@link answers/2}).
-spec check(global_name_server | global_group, term(), node()) ->
          boolean() | {reply, reference(), term()}.
check(Name, Msg, Peer) -> ok(Name, Msg, Peer).

%% @doc Whether `global''s helper `Caller' takes `Reply' as the answer to
%% the call it waits in. A peer's server answers `register',
%% `register_ext' (`yes'), `unregister' (`ok'), `set_lock' and `del_lock'
%% (`true' or `false'); the helpers ignore every answer but the one to
%% `set_lock', which must be a boolean (anything else crashes the helper,
%% and with it `global' and the node). A helper waits for a `set_lock'
%% answer with `global:set_lock_on_nodes/2' on its stack; one whose stack
%% cannot be read is taken to wait for one.
-spec answers(pid(), term()) -> boolean().
answers(_Caller, Reply) when is_boolean(Reply) -> true;
answers(Caller, Reply) when Reply =:= yes; Reply =:= ok -> not waits_for_lock(Caller);
answers(_Caller, _Reply) -> false.

waits_for_lock(Pid) ->
    case erlang:process_info(Pid, current_stacktrace) of
        {current_stacktrace, [_ | _] = Stack} ->
            lists:any(fun(Frame) -> element(1, Frame) =:= global andalso element(2, Frame) =:= set_lock_on_nodes end,
                      Stack);
        _ -> true
    end.

%%% global_name_server ------------------------------------------------------------

ok(global_name_server, {'$gen_call', From, Req}, Peer) ->
    seccomp_dist_owned:caller(From, Peer) andalso call(Req, Peer);
ok(global_name_server, {'$gen_cast', Req}, Peer) ->
    cast(Req, Peer);
ok(global_name_server, {init_connect_ack, Peer, _HisMyTag, _HisHisTag}, Peer) -> true;
ok(global_name_server, {cancel_connect, Peer, _Tag}, Peer) -> true;
%% A peer asks to be disconnected from itself.
ok(global_name_server, {remove_connection, Peer}, Peer) -> true;
%% Replies to calls of global's locker and registrar: gen_server replies
%% whose tag holds a reference this node showed the peer, for the filter to
%% take to the process that made the call ({@link answers/2} says which
%% answers it takes). Anything else would reach the helper's catch-all,
%% which logs the whole message: kernel memory many times its size.
ok(global_name_server, {{Tag, Peer}, Reply}, Peer) -> reply(Tag, Reply);
ok(global_name_server, {Tag, Reply}, _Peer) when is_reference(Tag) -> reply(Tag, Reply);
ok(global_name_server, {[alias | Tag], Reply}, _Peer) -> reply(Tag, Reply);
ok(global_name_server, {[[alias | Tag] | _Label], Reply}, _Peer) -> reply(Tag, Reply);
%% `lost_connection' names a third node that every receiver then drops:
%% a peer's word is not enough for that (see the README).
ok(global_group, {'$gen_cast', Req}, Peer) ->
    group_cast(Req, Peer);
ok(global_group, {disconnect_node, Peer}, Peer) -> true;
%% Answers to this node's configuration check, sent to global_group's pid.
ok(global_group, {Answer, Vsn, {Pid, _Session}, Peer}, Peer)
  when Answer =:= config_ok; Answer =:= config_error ->
    is_integer(Vsn) andalso Pid =:= whereis(global_group);
ok(_Name, _Msg, _Peer) ->
    false.

call({register, Name, Pid, Method}, Peer) -> insert(Name, Pid, Method, Peer);
call({register_ext, Name, Pid, Method, RegNode}, Peer) ->
    is_atom(RegNode) andalso insert(Name, Pid, Method, Peer);
call({unregister, Name}, Peer) ->
    case registered(Name) of
        none -> true;
        Pid -> node(Pid) =:= Peer
    end;
call({Lock, {_ResourceId, _RequesterId}}, _Peer) when Lock =:= set_lock; Lock =:= del_lock -> true;
call(_Req, _Peer) -> false.

cast({init_connect, Vsn, Peer, {locker, _, _HisKnown, HisLocker}}, Peer) ->
    version(Vsn) andalso own(HisLocker, Peer);
cast({exchange, Peer, Names, NamesExt, Tag}, Peer) ->
    all(fun(Entry) -> exchanged(Entry, Peer) end, Names) andalso names_ext(NamesExt)
        andalso once({exchange, Tag});
cast({resolved, Peer, Ops, Known, _Unused, NamesExt, Tag}, Peer) ->
    all(fun(Op) -> op(Op, Peer) end, Ops) andalso node_list(Known) andalso names_ext(NamesExt)
        andalso once({resolved, Tag});
cast({new_nodes, Peer, Ops, NamesExt, Nodes, ExtraInfo}, Peer) ->
    all(fun(Op) -> op(Op, Peer) end, Ops) andalso names_ext(NamesExt) andalso node_list(Nodes)
        andalso sync_lock(ExtraInfo);
cast({in_sync, Peer, IsKnown}, Peer) -> is_boolean(IsKnown);
cast({lock_set, Pid, Set, _HisKnown, _Tag}, Peer) -> own(Pid, Peer) andalso is_boolean(Set);
cast({lock_set, Pid, Set, _HisKnown}, Peer) -> own(Pid, Peer) andalso is_boolean(Set);
cast(_Req, _Peer) -> false.

%% A sync (the tag this node gave the peer for it) has one `exchange' and
%% one `resolved': `global' keeps the first of each until the other side's
%% part arrives, and a second with the sync's tag crashes it (`case_clause').
%% The connection's receiver remembers the ones it let in (a sync per
%% connection, and a few more if one is cancelled; past `?SYNCS' none).
once(Step) ->
    Seen = case get({?MODULE, syncs}) of
               undefined -> [];
               L -> L
           end,
    not lists:member(Step, Seen) andalso length(Seen) < ?SYNCS
        andalso begin put({?MODULE, syncs}, [Step | Seen]), true end.

%% `new_nodes' carries the lock its sync ran under (`[{vsn, V}, {lock,
%% {global, Id}}]' in every release that speaks version 5 and up): while
%% `global''s own lock is held here, which a peer may take, the server
%% inserts a name only after matching `{global, _}' against it, and
%% anything else crashes it.
sync_lock(ExtraInfo) ->
    proper(ExtraInfo) andalso
        case lists:keyfind(lock, 1, ExtraInfo) of
            {lock, {global, _}} -> true;
            _ -> false
        end.

%% `{HisVsn, HisTag}', or a longer tuple from a newer release. `global' no
%% longer speaks versions below 5, and its locker asserts it (a lower one
%% kills the locker, and with it the name server and the kernel).
version(Vsn) ->
    is_tuple(Vsn) andalso tuple_size(Vsn) >= 2 andalso is_integer(element(1, Vsn))
        andalso element(1, Vsn) >= ?MIN_GLOBAL_VSN.

op({insert, {Name, Pid, Method}}, Peer) -> insert(Name, Pid, Method, Peer);
%% A peer deletes only its own names (or names this node does not hold):
%% deleting a third node's name here would let the peer register it next.
op({delete, Name}, Peer) ->
    case registered(Name) of
        none -> true;
        Pid -> node(Pid) =:= Peer
    end;
op(_, _Peer) -> false.

%% A name of the peer's `exchange' that this node holds for another process
%% is a clash, which `global' resolves here when this node's name sorts
%% first: it runs the resolver the name was registered with, on the
%% holder's node, and `global:random_exit_name/3' kills one of the two
%% processes. Only between this node's and the peer's processes: a third
%% node's process in a clash (named by the peer, or held here from an
%% earlier sync) is refused, or one peer could make this node kill any
%% process on any node it is connected to.
exchanged({Name, Pid, Method}, Peer) ->
    name_entry(Name, Pid, Method)
        andalso case registered(Name) of
                    none -> true;
                    Pid -> true;
                    Held -> node() > Peer orelse (ours(Pid, Peer) andalso ours(Held, Peer))
                end;
exchanged(_Entry, _Peer) -> false.

ours(Pid, Peer) -> node(Pid) =:= node() orelse node(Pid) =:= Peer.

%% `global' inserts a name over whatever this node holds under it, with no
%% resolver (`register', and the inserts of `resolved' and `new_nodes'): a
%% peer inserts a name this node holds only for the same process, or for
%% one of its own holding it (this node's and third nodes' registrations
%% are never taken over; clashes go through `exchange' and its resolver).
insert(Name, Pid, Method, Peer) ->
    name_entry(Name, Pid, Method)
        andalso case registered(Name) of
                    none -> true;
                    Held -> Held =:= Pid orelse node(Held) =:= Peer
                end.

name_entry(Name, Pid, Method) ->
    is_pid(Pid) andalso is_function(Method, 3) andalso (node(Pid) =/= node() orelse registered(Name) =:= Pid).

names_ext(L) -> all(fun({_Name, Pid, RegNode}) -> is_pid(Pid) andalso is_atom(RegNode); (_) -> false end, L).

node_list(L) -> all(fun(N) when is_atom(N) -> true; ({N, V}) -> is_atom(N) andalso is_integer(V); (_) -> false end, L).

registered(Name) ->
    try ets:lookup(global_names, Name) of
        [{Name, Pid, _Method, _Ref} | _] -> Pid;
        _ -> none
    catch error:badarg -> none
    end.

%%% global_group ---------------------------------------------------------------------

group_cast({registered_names, User}, Peer) -> own(User, Peer);
group_cast({find_name, User, _Name}, Peer) -> own(User, Peer);
group_cast({conf_check, Vsn, Peer, From, sync, CCName, CCNodes}, Peer) ->
    conf_check(Vsn, From, CCName, normal, CCNodes, Peer);
group_cast({conf_check, Vsn, Peer, From, sync, CCName, PubType, CCNodes}, Peer) ->
    conf_check(Vsn, From, CCName, PubType, CCNodes, Peer);
group_cast(_Req, _Peer) -> false.

conf_check(Vsn, {Pid, _Session}, CCName, PubType, CCNodes, Peer) ->
    is_integer(Vsn) andalso own(Pid, Peer) andalso is_atom(CCName) andalso is_atom(PubType)
        andalso proper(CCNodes);
conf_check(_Vsn, _From, _CCName, _PubType, _CCNodes, _Peer) -> false.

%%% Helpers ----------------------------------------------------------------------------

reply(Tag, Reply) ->
    case local_ref(Tag) of
        true -> {reply, Tag, Reply};
        false -> false
    end.

own(Pid, Peer) -> seccomp_dist_owned:own(Pid, Peer).

local_ref(Ref) -> is_reference(Ref) andalso node(Ref) =:= node().

proper(L) -> seccomp_dist_owned:proper(L).

all(F, L) -> seccomp_dist_owned:all(F, L).
