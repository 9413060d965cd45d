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

-export([check/3, door/2, tag/1]).
-export_type([verdict/0]).

-type verdict() :: ok | {rpc, {module(), atom(), integer()}} | {relay, atom(), term()}
                 | {reply, reference(), fun((pid()) -> boolean())} | {refused, term()}.

%% @doc Judge `Msg' sent by node `Peer' to the local process registered as `Name'.
%% `{rpc, MFA}': allowed if the rpc rules allow `MFA'. `{relay, To, Inner}':
%% the receiver forwards `Inner' to the local name `To', judge that too.
%% `{reply, Ref, Takes}': a reply to a call of the local process that
%% showed the peer `Ref'; allowed if it goes to that process (at its pid or
%% one of its aliases) and `Takes(Caller)'.
-spec check(atom(), term(), node()) -> verdict().
check(net_kernel, {'$gen_call', From, {is_auth, Node}}, Peer) when is_atom(Node) ->
    caller(From, Peer, ok);
check(net_kernel, Msg, _Peer) ->
    {refused, {net_kernel, tag(Msg)}};

check(rex, {'$gen_call', From, {Call, M, F, A, GL}}, Peer) when Call =:= call; Call =:= block_call ->
    caller(From, Peer, rpc(M, F, A, GL));
check(rex, {'$gen_cast', {cast, M, F, A, GL}}, _Peer) ->
    rpc(M, F, A, GL);
check(rex, {From, {call, M, F, A, GL}}, Peer) ->
    own(From, Peer, rpc(M, F, A, GL));
check(rex, {From, features_request}, Peer) ->
    own(From, Peer, ok);
%% rex sends to the local name `To' for the peer, judged as the peer's own
%% send to `To' of what rex sends: `Msg' itself for `sbcast', `{From, Msg}'
%% for `send' (as in OTP's rpc.erl). Never to rex itself: a relay of a relay
%% nested N deep makes rex copy what is left of it at every level, work in
%% the square of the bytes sent.
check(rex, {_From, {Relay, rex, _Msg}} = Msg, _Peer) when Relay =:= sbcast; Relay =:= send ->
    {refused, {rex, tag(Msg)}};
check(rex, {From, {sbcast, To, Msg}}, Peer) when is_atom(To) ->
    own(From, Peer, {relay, To, Msg});
check(rex, {From, {send, To, Msg}}, Peer) when is_atom(To) ->
    own(From, Peer, {relay, To, {From, Msg}});
check(rex, Msg, _Peer) ->
    {refused, {rex, tag(Msg)}};

check(Name, Msg, Peer) when Name =:= global_name_server; Name =:= global_group ->
    case seccomp_dist_global:check(Name, Msg, Peer) of
        true -> ok;
        false -> {refused, {Name, tag(Msg)}};
        {reply, Ref, Reply} -> {reply, Ref, fun(Caller) -> seccomp_dist_global:answers(Caller, Reply) end}
    end;

check(pg, Msg, Peer) ->
    Protocol = pg_protocol(),
    case pg(Msg, Peer, Protocol) andalso (Protocol =:= 29 orelse seccomp_dist_pg:admit(Msg)) of
        true -> ok;
        false -> {refused, {pg, tag(Msg)}}
    end;

check(_Name, Msg, Peer) ->
    door(Msg, Peer).

%% The group leader of an rpc is the caller's (never a local process); the
%% arguments a proper list.
rpc(M, F, A, GL) ->
    case is_pid(GL) andalso node(GL) =/= node() andalso seccomp_dist_owned:length(A) of
        false -> {refused, bad_rpc};
        -1 -> {refused, bad_rpc};
        Arity -> {rpc, {M, F, Arity}}
    end.

%% pg scopes: discovery, joins, leaves and syncs of the peer's own scope
%% process about the peer's own processes, in the forms the local `pg'
%% handles (anything else makes it raise, and five raises stop the node);
%% before OTP 29, only the leaves and syncs that fit what the peer's scope
%% told it before ({@link seccomp_dist_pg}).
%% OTP 25's pg: `discover', `join', `leave', `sync'; OTP 29's
%% (data_publisher) adds versioned discovery, full local data and updates.
pg({discover, From}, Peer, _) -> own(From, Peer);
pg({join, From, _Group, Pids}, Peer, _) -> own(From, Peer) andalso pids(Pids, Peer);
pg({leave, From, Pids, Groups}, Peer, _) ->
    own(From, Peer) andalso pids(Pids, Peer) andalso seccomp_dist_owned:proper(Groups);
pg({'$gen_cast', {sync, From, Groups}}, Peer, _) ->
    own(From, Peer) andalso all(fun({_, Pids}) -> all_own(Pids, Peer); (_) -> false end, Groups);
pg({discover, From, Version}, Peer, 29) -> own(From, Peer) andalso is_integer(Version);
pg({'$gen_cast', {local_data, _, _, _} = Data}, Peer, 29) -> pg(Data, Peer, 29);
%% OTP 29's forms carry lists of pids only (its pg appends and subtracts them).
pg({local_data, From, Version, Groups}, Peer, 29) when is_map(Groups) ->
    own(From, Peer) andalso is_integer(Version)
        andalso lists:all(fun(Pids) -> all_own(Pids, Peer) end, maps:values(Groups));
pg({update, From, Update}, Peer, 29) ->
    own(From, Peer) andalso all(fun({_Group, Add, Remove}) -> all_own(Add, Peer) andalso all_own(Remove, Peer);
                                   (_) -> false
                                end, Update);
pg(_Msg, _Peer, _Protocol) ->
    false.

%% The pg protocol of the local release: 29 from OTP 29 on, else 25.
pg_protocol() ->
    case list_to_integer(erlang:system_info(otp_release)) of
        R when R >= 29 -> 29;
        _ -> 25
    end.

pids(Pid, Peer) when is_pid(Pid) -> own(Pid, Peer);
pids(Pids, Peer) -> all_own(Pids, Peer).

all_own(Pids, Peer) -> all(fun(P) -> own(P, Peer) end, Pids).

all(F, L) -> seccomp_dist_owned:all(F, L).

own(Pid, Peer) -> seccomp_dist_owned:own(Pid, Peer).

own(Pid, Peer, Verdict) ->
    case own(Pid, Peer) of
        true -> Verdict;
        false -> {refused, not_own_pid}
    end.

%% gen_server callers are `{Pid, Tag}'; the reply goes to Pid or to an alias in Tag.
caller(From, Peer, Verdict) ->
    case seccomp_dist_owned:caller(From, Peer) of
        true -> Verdict;
        false -> {refused, bad_caller}
    end.

%% @doc Message shapes that act on the receiving process itself, whoever it
%% is (a named process, or a pid or alias the peer was shown, by this node's
%% code or by `global''s and `pg''s protocols): system messages (sys's
%% state, suspension, debug logs to files, termination), `{'EXIT', _, _}'
%% messages (a behaviour whose parent it names stops), a supervisor's
%% children, and calls whose reply would go to a process the peer picked.
-spec door(term(), node()) -> ok | {refused, term()}.
door({'$gen_call', From, Req}, Peer) ->
    case children_request(Req) of
        true -> {refused, element(1, Req)};
        false -> caller(From, Peer, ok)
    end;
door({'$gen_cast', Req}, _Peer) ->
    case children_request(Req) of
        true -> {refused, element(1, Req)};
        false -> ok
    end;
door({system, _, _}, _Peer) -> {refused, system_message};
%% OTP's behaviours stop when a message says their parent exited.
door({'EXIT', _, _}, _Peer) -> {refused, exit_message};
%% An io server applies the function an io request names; a file's io
%% server also moves, truncates and closes the file on a file request.
door({io_request, _, _, _}, _Peer) -> {refused, io_request};
door({file_request, _, _, _}, _Peer) -> {refused, file_request};
door(_Msg, _Peer) -> ok.

%% Whether a request asks a supervisor to start, restart, stop or forget a
%% child, in any of its forms (OTP's `supervisor', Elixir's
%% `DynamicSupervisor', whose `start_task' carries the function a
%% `Task.Supervisor' runs): a child is code that runs here.
children_request(Req) when is_tuple(Req), tuple_size(Req) > 0 ->
    lists:member(element(1, Req), [start_child, restart_child, terminate_child, delete_child, start_task]);
children_request(_Req) ->
    false.

%% @doc A short name of a message's kind, for refusals: never the message itself.
-spec tag(term()) -> term().
tag({'$gen_call', _, Req}) -> {call, tag(Req)};
tag({'$gen_cast', Req}) -> {cast, tag(Req)};
tag(T) when is_tuple(T), tuple_size(T) > 0, is_atom(element(1, T)) -> element(1, T);
tag(T) when is_atom(T) -> T;
tag(_) -> other.
