%% @doc How many new atoms peers may make this node create. Atoms are never
%% freed, so the budget is kept for the life of distribution, not of a
%% connection: per peer node name (`max_new_atoms' of its rules) and for all
%% peers together (an eighth of the atom table), so reconnecting, or
%% connecting under ever new names, does not renew it. A receiver charges
%% the atoms of a term before the term is decoded, by it or by the runtime.
-module(seccomp_dist_budget).

-export([init/0, left/2, charge/3, charge_name/1]).

-define(TAB, seccomp_dist_budget).
-define(ALL, all_peers).
-define(NAMES, handshake_names).

%% @doc Create the table (once; its owner is the process that listens).
-spec init() -> ok.
init() ->
    _ = ets:info(?TAB) =:= undefined
        andalso ets:new(?TAB, [named_table, public, {write_concurrency, true}]),
    ok.

%% @doc New atoms node `Node' may still cause, its own budget being `Max'.
-spec left(node(), non_neg_integer()) -> non_neg_integer().
left(Node, Max) ->
    max(0, min(Max - used({node, Node}), cap() - used(?ALL))).

%% @doc Take `N' atoms from `Node''s budget and from the budget of all
%% peers; `atom_budget' (and nothing taken) if either is exceeded.
-spec charge(node(), non_neg_integer(), non_neg_integer()) -> ok | atom_budget.
charge(_Node, 0, _Max) -> ok;
charge(Node, N, Max) ->
    try
        All = ets:update_counter(?TAB, ?ALL, N, {?ALL, 0}),
        Mine = ets:update_counter(?TAB, {node, Node}, N, {{node, Node}, 0}),
        case All =< cap() andalso Mine =< Max of
            true -> ok;
            false ->
                _ = ets:update_counter(?TAB, ?ALL, -N),
                _ = ets:update_counter(?TAB, {node, Node}, -N),
                atom_budget
        end
    catch
        %% no table: distribution is being stopped
        error:badarg -> atom_budget
    end.

%% @doc Charge the name a connecting node gives in its first handshake
%% packet, before it proved it holds the cookie: the handshake makes an
%% atom of a name this node does not know yet (a dynamic name too). Such
%% names take from the budget of all peers and from their own, smaller cap,
%% so a stranger cannot fill the atom table by connecting under ever new
%% names; once it is spent, nodes with new names are refused (known names
%% still connect). The handshake makes the atom of the name's bytes, each
%% byte a character (`list_to_atom/1').
-spec charge_name(binary() | dynamic) -> ok | atom_budget.
charge_name(dynamic) -> charge_unknown_name();
charge_name(Name) ->
    try binary_to_existing_atom(Name, latin1) of
        _ -> ok
    catch error:badarg -> charge_unknown_name()
    end.

charge_unknown_name() ->
    try
        All = ets:update_counter(?TAB, ?ALL, 1, {?ALL, 0}),
        Names = ets:update_counter(?TAB, ?NAMES, 1, {?NAMES, 0}),
        case All =< cap() andalso Names =< cap() div 8 of
            true -> ok;
            false ->
                _ = ets:update_counter(?TAB, ?ALL, -1),
                _ = ets:update_counter(?TAB, ?NAMES, -1),
                atom_budget
        end
    catch
        error:badarg -> atom_budget
    end.

used(Key) ->
    try ets:lookup(?TAB, Key) of
        [{Key, N}] -> N;
        [] -> 0
    catch error:badarg -> cap()
    end.

%% The share of the atom table all peers together may fill.
cap() -> erlang:system_info(atom_limit) div 8.
