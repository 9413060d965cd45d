%% @doc What a peer's `pg' scopes have told the local `pg' scope, for the
%% `pg' of OTP 25-28, which trusts it: a `leave' of a group the peer never
%% joined (or the same group twice) makes the scope raise `badkey', and a
%% leave of pids another scope joined leaves the scope's table without a
%% group its state still names, so a later `sync' raises `badmatch'. Five
%% raises stop the node. The receiver keeps, per connection and per peer
%% scope (the pid the messages name as their sender), the groups and pids
%% that scope joined, updated exactly as `pg' updates its own view, and lets
%% in only the leaves and syncs `pg' handles. A group a scope holds with
%% no pids (an empty join, or a sync that lists one) is refused too: `pg'
%% drops a group's table row when its last pid leaves, whichever scope it
%% came from, and a scope that still lists the group empty then makes its
%% next sync raise `badmatch'. OTP 29's `pg' looks every group up with a
%% default and needs none of this.
%%
%% The view lives in the receiver's process dictionary: one connection, one
%% process, packets in order, as the scope receives them.
-module(seccomp_dist_pg).

-export([admit/1, scope_down/1]).

%% Scopes a peer node may have announced at once (a node runs one `pg'
%% scope under the name `pg'; each is as much state here as in `pg').
-define(MAX_SCOPES, 16).

%% @doc Whether the local `pg' handles `Msg' (one the message shapes let
%% in: the sender and the pids are the peer's) given what the peer's scope
%% told it before; if so, the view is updated as `pg' updates its own.
-spec admit(term()) -> boolean().
admit({discover, Scope}) ->
    case view(Scope) of
        undefined -> new_scope(Scope, #{});
        _ -> true
    end;
admit({join, _Scope, _Group, []}) ->
    false;
admit({join, Scope, Group, PidOrPids}) ->
    case view(Scope) of
        undefined -> true;
        Groups -> put_view(Scope, maps:update_with(Group, fun(Old) -> pids(PidOrPids) ++ Old end,
                                                   pids(PidOrPids), Groups))
    end;
%% A scope with no view is one `pg' does not know either (it ignores the
%% leave); refused, so that a view lost while `pg' still knows the scope (a
%% monitor exit the runtime drops, with a reference `pg' never made) never
%% lets a leave through unchecked.
admit({leave, Scope, PidOrPids, Left}) ->
    case view(Scope) of
        undefined -> false;
        Groups ->
            case leave(pids(PidOrPids), Left, Groups) of
                {ok, Rest} -> put_view(Scope, Rest);
                refused -> false
            end
    end;
admit({'$gen_cast', {sync, Scope, Synced}}) ->
    Groups = maps:from_list(Synced),
    map_size(Groups) =:= length(Synced) andalso not lists:member([], maps:values(Groups)) andalso
        case view(Scope) of
            undefined -> new_scope(Scope, Groups);
            _ -> put_view(Scope, Groups)
        end;
admit(_Msg) ->
    true.

%% @doc The peer's process `Pid' is gone (a monitor of the local `pg' fired):
%% the scope forgets it, and so does the view.
-spec scope_down(pid()) -> ok.
scope_down(Pid) ->
    _ = erase({?MODULE, Pid}),
    ok.

%% Every group named must hold every pid named, at the time `pg' gets to
%% it (a group left empty is gone).
leave(_Pids, [], Groups) ->
    {ok, Groups};
leave(Pids, [Group | Rest], Groups) ->
    case maps:find(Group, Groups) of
        {ok, Members} ->
            case {Pids -- Members, Members -- Pids} of
                {[_ | _], _} -> refused;
                {[], []} -> leave(Pids, Rest, maps:remove(Group, Groups));
                {[], Left} -> leave(Pids, Rest, Groups#{Group := Left})
            end;
        error -> refused
    end.

pids(Pid) when is_pid(Pid) -> [Pid];
pids(Pids) -> Pids.

view(Scope) -> get({?MODULE, Scope}).

put_view(Scope, Groups) ->
    _ = put({?MODULE, Scope}, Groups),
    true.

new_scope(Scope, Groups) ->
    length([K || {{?MODULE, _}, _} = K <- get()]) < ?MAX_SCOPES andalso put_view(Scope, Groups).
