%% @doc What a peer may send to a local registered process: for the
%% processes cluster housekeeping needs (`net_kernel', `global_name_server',
%% `global_group', `pg', `rex'), exactly the messages their peer protocols
%% use (as in OTP's net_kernel.erl, global.erl, global_group.erl, pg.erl and
%% rpc.erl); for any other process the policy names, anything but the
%% messages that are doors to code execution or to a process's internals.
%%
%% Pids inside protocol messages that stand for the sending side must be on
%% the sending node: a peer speaks for itself only.
-module(seccomp_dist_shapes).

-export([check/3]).
-export_type([verdict/0]).

-type verdict() :: ok | {rpc, {module(), atom(), integer()}} | {relay, atom(), term()}
                 | {refused, term()}.

%% @doc Judge `Msg' sent by node `Peer' to the local process registered as `Name'.
%% `{rpc, MFA}': allowed if the rpc rules allow `MFA'. `{relay, To, Inner}':
%% the receiver forwards `Inner' to the local name `To', judge that too.
-spec check(atom(), term(), node()) -> verdict().
check(net_kernel, {'$gen_call', From, {is_auth, Node}}, Peer) when is_atom(Node) ->
    caller(From, Peer, ok);
check(net_kernel, Msg, _Peer) ->
    {refused, {net_kernel, tag(Msg)}};

check(rex, {'$gen_call', From, {Call, M, F, A, _GL}}, Peer) when Call =:= call; Call =:= block_call ->
    caller(From, Peer, {rpc, {M, F, arity(A)}});
check(rex, {'$gen_cast', {cast, M, F, A, _GL}}, _Peer) ->
    {rpc, {M, F, arity(A)}};
check(rex, {From, {call, M, F, A, _GL}}, Peer) when is_pid(From) ->
    own(From, Peer, {rpc, {M, F, arity(A)}});
check(rex, {From, features_request}, Peer) when is_pid(From) ->
    own(From, Peer, ok);
check(rex, {From, {Relay, To, Msg}}, Peer) when is_pid(From), is_atom(To), (Relay =:= sbcast orelse Relay =:= send) ->
    own(From, Peer, {relay, To, Msg});
check(rex, Msg, _Peer) ->
    {refused, {rex, tag(Msg)}};

check(global_name_server, {'$gen_call', From, Req}, Peer) when is_tuple(Req) ->
    case lists:member(element(1, Req), [register, register_ext, unregister, set_lock, del_lock]) of
        true -> caller(From, Peer, ok);
        false -> {refused, {global_name_server, tag(Req)}}
    end;
check(global_name_server, {'$gen_cast', Req}, Peer) when is_tuple(Req), tuple_size(Req) >= 2 ->
    Casts = [init_connect, lock_is_set, exchange, exchange_ops, resolved, new_nodes, in_sync,
             async_del_name, async_del_lock, lock_set],
    case lists:member(element(1, Req), Casts) of
        true -> speaks_for_itself(Req, Peer);
        false -> {refused, {global_name_server, tag(Req)}}
    end;
check(global_name_server, {lost_connection, Peer, _XCreation, _OpId, _NodeB}, Peer) -> ok;
check(global_name_server, {init_connect_ack, Peer, _HisMyTag, _HisHisTag}, Peer) -> ok;
check(global_name_server, {cancel_connect, Peer, _Tag}, Peer) -> ok;
check(global_name_server, Msg, _Peer) ->
    {refused, {global_name_server, tag(Msg)}};

check(global_group, {'$gen_cast', Req}, Peer) when is_tuple(Req) ->
    case element(1, Req) of
        conf_check when tuple_size(Req) >= 3, element(3, Req) =:= Peer -> ok;
        Tag when Tag =:= registered_names; Tag =:= find_name ->
            own(element(2, Req), Peer, ok);
        Tag when Tag =:= registered_names_res; Tag =:= find_name_res; Tag =:= send_res -> ok;
        Tag -> {refused, {global_group, Tag}}
    end;
%% A peer may only ask to be disconnected from itself.
check(global_group, {disconnect_node, Peer}, Peer) -> ok;
check(global_group, Msg, _Peer) ->
    {refused, {global_group, tag(Msg)}};

check(pg, Msg, Peer) ->
    pg(Msg, Peer);

check(_Name, Msg, _Peer) ->
    door(Msg).

%% pg scopes: discovery, joins, leaves and syncs of the peer's own scope
%% process about the peer's own processes.
pg({discover, From}, Peer) when is_pid(From) -> own(From, Peer, ok);
pg({join, From, _Group, Pids}, Peer) when is_pid(From) -> own(From, Peer, all_own(Pids, Peer));
pg({leave, From, Pids, Groups}, Peer) when is_pid(From), is_list(Groups) -> own(From, Peer, all_own(Pids, Peer));
pg({'$gen_cast', {sync, From, Groups}}, Peer) when is_pid(From), is_list(Groups) ->
    own(From, Peer, all_own(lists:append([Pids || {_, Pids} <- Groups]), Peer));
%% OTP 29's pg (data_publisher): versioned discovery, full local data, updates.
pg({discover, From, Version}, Peer) when is_pid(From), is_integer(Version) -> own(From, Peer, ok);
pg({local_data, From, Version, Groups}, Peer) when is_pid(From), is_integer(Version), is_map(Groups) ->
    own(From, Peer, all_own(lists:append([to_list(Pids) || Pids <- maps:values(Groups)]), Peer));
pg({update, From, Update}, Peer) when is_pid(From), is_list(Update) ->
    Pids = [to_list(Add) ++ to_list(Remove) || {_Group, Add, Remove} <- Update],
    case length(Pids) =:= length(Update) of
        true -> own(From, Peer, all_own(lists:append(Pids), Peer));
        false -> {refused, {pg, bad_update}}
    end;
pg(Msg, _Peer) ->
    {refused, {pg, tag(Msg)}}.

to_list(L) when is_list(L) -> L;
to_list(X) -> [X].

all_own(Pid, Peer) when is_pid(Pid) -> own(Pid, Peer, ok);
all_own(Pids, Peer) when is_list(Pids) ->
    case lists:all(fun(P) -> is_pid(P) andalso node(P) =:= Peer end, Pids) of
        true -> ok;
        false -> {refused, not_own_pids}
    end;
all_own(_, _Peer) -> {refused, not_own_pids}.

%% `global' casts name the sending node as their second element.
speaks_for_itself({init_connect, _VsnTag, Peer, _InitMsg}, Peer) -> ok;
speaks_for_itself({init_connect, _VsnTag, Other, _InitMsg}, _Peer) -> {refused, {not_own, Other}};
speaks_for_itself(Req, Peer) when element(1, Req) =:= async_del_name; element(1, Req) =:= async_del_lock ->
    own(element(3, Req), Peer, ok);
speaks_for_itself(Req, Peer) ->
    case element(2, Req) of
        Peer -> ok;
        Pid when is_pid(Pid) -> own(Pid, Peer, ok);
        Other -> {refused, {not_own, Other}}
    end.

%% gen_server callers are `{Pid, Tag}'.
caller({Pid, _Tag}, Peer, Verdict) when is_pid(Pid) -> own(Pid, Peer, Verdict);
caller(_From, _Peer, _Verdict) -> {refused, bad_caller}.

own(Pid, Peer, Verdict) when is_pid(Pid), node(Pid) =:= Peer -> Verdict;
own(_Pid, _Peer, _Verdict) -> {refused, not_own_pid}.

%% Message shapes that act on the receiving process itself, whoever it is.
door({'$gen_call', _, {Start, _}}) when Start =:= start_child; Start =:= restart_child -> {refused, start_child};
door({system, _, _}) -> {refused, system_message};
door({io_request, _, _, _}) -> {refused, io_request};
door(_Msg) -> ok.

tag({'$gen_call', _, Req}) -> {call, tag(Req)};
tag({'$gen_cast', Req}) -> {cast, tag(Req)};
tag(T) when is_tuple(T), tuple_size(T) > 0, is_atom(element(1, T)) -> element(1, T);
tag(T) when is_atom(T) -> T;
tag(_) -> other.

arity(A) when is_list(A) -> length(A);
arity(_) -> -1.
