%% @doc The policy of the `seccomp' distribution carrier: its default, its
%% validation, reading it from a file (also at boot, before the file server
%% runs), and the rules that apply to one peer node.
-module(seccomp_dist_policy).

-export([default/0, normalise/1, load/1, rules_for/2, install/1, current/0]).
-export_type([policy/0, node_rules/0, source/0]).

-type mfa_pattern() :: {atom(), atom() | '_', arity() | '_'} | atom().
-type node_rules() :: #{rpc := [mfa_pattern()], names := [atom()], send := boolean(),
                        link := boolean(), monitor := boolean(), exit := boolean(),
                        exit2 := boolean(), group_leader := boolean(), funs := boolean(),
                        on_violation := drop | disconnect, max_new_atoms := non_neg_integer(),
                        max_message_bytes := pos_integer()}.
-type policy() :: #{default := node_rules(), nodes := [{string(), node_rules()}]}.
-type source() :: map() | {file, file:name_all()}.

-define(POLICY_KEY, {?MODULE, policy}).
%% A policy file may name another one; this many hops at most.
-define(MAX_FILE_HOPS, 8).

%% @doc The policy used when none is configured: cluster housekeeping works,
%% remote code execution does not.
-spec default() -> policy().
default() -> #{default => default_rules(), nodes => []}.

default_rules() ->
    #{rpc => [], names => [net_kernel, global_name_server, global_group, pg, rex],
      send => true, link => true, monitor => true, exit => true, exit2 => false,
      group_leader => false, funs => false, on_violation => drop,
      max_new_atoms => 10000, max_message_bytes => 256 * 1024 * 1024}.

%% @doc Load `Source' and make it the policy in force. The rules drivers
%% hold to deliver messages on their own are out of date from then on.
-spec install(source()) -> ok | {error, term()}.
install(Source) ->
    case load(Source) of
        {ok, P} ->
            ok = persistent_term:put(?POLICY_KEY, P),
            _ = seccomp_nif:dist_policy_changed(),
            ok;
        {error, _} = E -> E
    end.

%% @doc The policy in force (the default until one is installed). The very
%% same term comes back until another is installed, so callers can tell a
%% change by comparing.
-spec current() -> policy().
current() ->
    case persistent_term:get(?POLICY_KEY, undefined) of
        undefined -> default();
        Policy -> Policy
    end.

%% @doc A policy from a map or from `{file, Path}' (a file holding one map, or
%% `{file, Other}'). Files are read with `prim_file', so this works while the
%% node boots; a chain of files that comes back to one of its own is refused.
-spec load(source()) -> {ok, policy()} | {error, term()}.
load(Source) -> load(Source, []).

load({file, Path}, Seen) ->
    Name = unicode:characters_to_list(Path),
    Abs = absolute(Name),
    case lists:member(Abs, Seen) of
        true -> {error, {cyclic_dist_policy, lists:reverse([Abs | Seen])}};
        false when length(Seen) >= ?MAX_FILE_HOPS -> {error, {dist_policy_file_chain_too_long, Abs}};
        false ->
            case seccomp_term_file:read(Abs) of
                {ok, Term} -> load(Term, [Abs | Seen]);
                {error, Why} -> {error, {file, Name, Why}}
            end
    end;
load(Map, _Seen) ->
    normalise(Map).

%% `filename:absname/1' asks the file server, which may not run yet.
absolute(Name) ->
    case filename:pathtype(Name) of
        absolute -> Name;
        _ -> {ok, Cwd} = prim_file:get_cwd(), filename:join(Cwd, Name)
    end.

%% @doc Validate a user policy: `#{default => Rules, nodes => [{Pattern, Rules}]}'
%% where `Rules' overrides keys of the default rules and `Pattern' is a node
%% name with `*' wildcards.
-spec normalise(term()) -> {ok, policy()} | {error, {invalid_dist_policy, term()}}.
normalise(#{} = P) ->
    try
        [throw({unknown_key, K}) || K <- maps:keys(P), not lists:member(K, [default, nodes])],
        Default = rules(maps:get(default, P, #{}), default_rules()),
        Nodes = [{pattern(Pat), rules(R, Default)} || {Pat, R} <- maps:get(nodes, P, [])],
        {ok, #{default => Default, nodes => Nodes}}
    catch
        throw:Why -> {error, {invalid_dist_policy, Why}};
        error:_ -> {error, {invalid_dist_policy, P}}
    end;
normalise(Other) ->
    {error, {invalid_dist_policy, Other}}.

rules(R, Base) when is_map(R) ->
    maps:fold(fun(K, V, Acc) ->
                      is_map_key(K, Base) orelse throw({unknown_rule, K}),
                      valid_rule(K, V) orelse throw({K, V}),
                      Acc#{K => V}
              end, Base, R);
rules(R, _Base) ->
    throw({rules, R}).

valid_rule(rpc, L) -> is_list(L) andalso lists:all(fun is_mfa_pattern/1, L);
valid_rule(names, L) -> is_list(L) andalso lists:all(fun is_atom/1, L);
valid_rule(on_violation, V) -> V =:= drop orelse V =:= disconnect;
valid_rule(max_new_atoms, V) -> is_integer(V) andalso V >= 0;
valid_rule(max_message_bytes, V) -> is_integer(V) andalso V > 0;
valid_rule(_, V) -> is_boolean(V).

is_mfa_pattern(M) when is_atom(M) -> true;
is_mfa_pattern({M, F, A}) -> is_atom(M) andalso is_atom(F) andalso (A =:= '_' orelse is_integer(A));
is_mfa_pattern(_) -> false.

pattern(P) when is_atom(P) -> atom_to_list(P);
pattern(P) when is_binary(P) -> binary_to_list(P);
pattern(P) when is_list(P) -> P.

%% @doc The rules for a node: the first matching pattern, else the default.
%% The name is the one the peer gave in the handshake.
-spec rules_for(node(), policy()) -> node_rules().
rules_for(Node, #{default := Default, nodes := Nodes}) ->
    Name = atom_to_list(Node),
    case [R || {Pat, R} <- Nodes, glob(Pat, Name)] of
        [R | _] -> R;
        [] -> Default
    end.

glob([], []) -> true;
glob([$* | Rest], Name) -> glob(Rest, Name) orelse (Name =/= [] andalso glob([$* | Rest], tl(Name)));
glob([C | Rest], [C | Name]) -> glob(Rest, Name);
glob(_, _) -> false.
