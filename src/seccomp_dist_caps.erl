%% @doc A connection's native state (`seccomp_nif', `dist/'): what the peer
%% node was given, that is the local pids and references (aliases) this node
%% has shown it in any packet it sent (a pid in a message, a spawn reply
%% naming the process its request created, the sender of a monitor or
%% link), and the monitors local processes set up on the peer's processes.
%% A peer may address a local process or alias by pid or reference only if
%% it holds it, and only a monitor recorded here may fire.
%%
%% Outgoing packets are recorded before they are written: by the driver
%% ({@link seccomp_dist_port}) or, for a connection whose process writes
%% them, with {@link show/2}. A pid or reference a peer named before it was
%% shown to it ({@link named_by_peer/2}) is shown only where the process
%% itself acts (the sender of a message, link, exit or monitor, a spawn's
%% requester, the process a spawn reply reports), never by an echo. Shown items are kept in generations of 100,000;
%% when one is full, older items are dropped but pids of processes still
%% alive ({@link rotate/1}). The same state holds the rules and registry
%% copy the driver delivers messages by.
-module(seccomp_dist_caps).

-export([new/0, id/1, resource/1, peer/2, show/2, named_by_peer/2, holds/2, owner/2, found_plain/2, is_plain/2,
         monitor_fired/3, forget_monitor/2, rotate/1, rules/4, registry/2]).
-export_type([conn/0]).

-opaque conn() :: {reference(), pos_integer()}.

%% @doc A fresh state, for a connection of this node.
-spec new() -> conn().
new() -> seccomp_nif:dist_conn_new(atom_to_binary(node(), utf8)).

%% @doc The number a driver port claims the state by.
-spec id(conn()) -> pos_integer().
id({_Resource, Id}) -> Id.

-spec resource(conn()) -> reference().
resource({Resource, _Id}) -> Resource.

%% @doc The node the connection leads to, once the handshake knows it.
-spec peer(conn(), node()) -> ok.
peer({Resource, _}, Node) ->
    true = seccomp_nif:dist_conn_peer(Resource, atom_to_binary(Node, utf8)),
    ok.

%% @doc Record what the outgoing packet `Data' (as
%% `erlang:dist_ctrl_get_data/1' returns it) shows the peer.
-spec show(iodata(), conn()) -> ok.
show(Data, {Resource, _}) -> seccomp_nif:dist_caps_show(Resource, iolist_to_binary(Data)).

%% @doc Note the local pids and references the incoming packet `Packet'
%% names that the peer was not shown (a guess, or a relay from a third
%% node): this node sending them back later (an error quoting its
%% arguments, a name a peer registered) echoes them, it does not show them.
%% `too_many' when the peer has named more than 100,000 such.
-spec named_by_peer(binary(), conn()) -> ok | too_many.
named_by_peer(Packet, {Resource, _}) ->
    case seccomp_nif:dist_caps_named(Resource, Packet) of
        true -> ok;
        false -> too_many
    end.

%% @doc Whether the peer was shown `X'.
-spec holds(conn(), pid() | reference()) -> boolean().
holds({Resource, _}, X) -> seccomp_nif:dist_caps_holds(Resource, X).

%% @doc The local process that sent the shown reference `Ref' (the owner of
%% an alias: the process that made a call), or `undefined'.
-spec owner(conn(), reference()) -> pid() | undefined.
owner({Resource, _}, Ref) -> seccomp_nif:dist_caps_owner(Resource, Ref).

%% @doc `Pid' is neither named nor the runtime's or OTP's own: the driver may
%% deliver messages to it and its aliases itself (until the next generation).
-spec found_plain(conn(), pid()) -> ok.
found_plain({Resource, _}, Pid) -> seccomp_nif:dist_caps_found_plain(Resource, Pid).

%% @doc Whether {@link found_plain/2} was said of `Pid' in this generation.
-spec is_plain(conn(), pid()) -> boolean().
is_plain({Resource, _}, Pid) -> seccomp_nif:dist_caps_is_plain(Resource, Pid).

%% @doc Whether `Ref' names a monitor a local process set up on the peer
%% whose exit may name `Proc' as the process that went (the pid or name it
%% watches; any pid for a spawn request's), which now counts as fired. No
%% process is registered as `undefined'.
-spec monitor_fired(conn(), term(), term()) -> boolean().
monitor_fired({Resource, _}, Ref, Proc) when is_reference(Ref), Proc =/= undefined ->
    seccomp_nif:dist_caps_monitor_fired(Resource, Ref, Proc);
monitor_fired(_Conn, _NotRef, _Proc) -> false.

%% @doc `Ref' names a monitor that will never fire (a spawn request's whose
%% spawn failed): it is forgotten.
-spec forget_monitor(conn(), term()) -> ok.
forget_monitor({Resource, _}, Ref) when is_reference(Ref) ->
    seccomp_nif:dist_caps_forget_monitor(Resource, Ref);
forget_monitor(_Conn, _NotRef) -> ok.

%% @doc Start a new generation of shown items.
-spec rotate(conn()) -> ok.
rotate({Resource, _}) -> seccomp_nif:dist_caps_rotate(Resource).

%% @doc The rules of the policy epoch `Epoch' the driver delivers by, and
%% the atoms that make a message a door (it leaves those to the filter).
-spec rules(conn(), non_neg_integer(), seccomp_dist_policy:node_rules(), [binary()]) -> ok.
rules({Resource, _}, Epoch, #{send := Send, max_message_bytes := Max, rpc := Rpc}, Doors) ->
    seccomp_nif:dist_conn_rules(Resource, Epoch, {Send, Max, Rpc, Doors}).

%% @doc The local processes the filter judges by name, as of now.
-spec registry(conn(), [pid()]) -> ok.
registry({Resource, _}, Pids) -> seccomp_nif:dist_conn_registry(Resource, Pids).
