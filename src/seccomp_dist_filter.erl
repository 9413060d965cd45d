%% @doc The decision of the `seccomp' distribution carrier: what an incoming
%% packet from a given node is, and whether the node's policy lets it in.
%%
%% The carrier refuses the atom-cache and fragment flags during the
%% handshake, so every packet after it is a tick (empty) or
%% `<<112, Control/term-with-131, [Payload/term-with-131]>>'. The control
%% term is decoded with `safe': a control message naming atoms this node has
%% never seen (a registered name, a module) is refused rather than allowed to
%% grow the atom table.
-module(seccomp_dist_filter).

-export([decide/3, normalise/1, default/0, rules_for/2]).

-export_type([policy/0, node_rules/0, decision/0]).

-type node_rules() :: #{rpc := [mfa_pattern()], names := [atom()], send := boolean(),
                        link := boolean(), monitor := boolean(), exit := boolean(),
                        exit2 := boolean(), group_leader := boolean(), funs := boolean(),
                        on_violation := drop | disconnect}.
-type mfa_pattern() :: {atom(), atom() | '_', arity() | '_'} | atom().
-type policy() :: #{default := node_rules(), nodes := [{string(), node_rules()}]}.
-type decision() :: {accept, atom()} | {refuse, atom(), term()} | {malformed, term()}.

-define(PASS_THROUGH, 112).
-define(MAX_PACKET, 64 * 1024 * 1024).
-define(GLOBAL_RESOLVERS, [{global, random_exit_name, 3}, {global, random_notify_name, 3},
                           {global, notify_all_name, 3}]).

%% @doc The policy used when none is configured: cluster housekeeping works,
%% remote code execution does not.
-spec default() -> policy().
default() -> #{default => default_rules(), nodes => []}.

default_rules() ->
    #{rpc => [], names => [net_kernel, global_name_server, global_group, pg, rex],
      send => true, link => true, monitor => true, exit => true, exit2 => false,
      group_leader => false, funs => false, on_violation => drop}.

%% @doc Validate a user policy: `#{default => Rules, nodes => [{Pattern, Rules}]}'
%% where `Rules' overrides keys of the default rules and `Pattern' is a node
%% name with `*' wildcards.
-spec normalise(map()) -> {ok, policy()} | {error, {invalid_dist_policy, term()}}.
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
valid_rule(_, V) -> is_boolean(V).

is_mfa_pattern(M) when is_atom(M) -> true;
is_mfa_pattern({M, F, A}) -> is_atom(M) andalso is_atom(F) andalso (A =:= '_' orelse is_integer(A));
is_mfa_pattern(_) -> false.

pattern(P) when is_atom(P) -> atom_to_list(P);
pattern(P) when is_binary(P) -> binary_to_list(P);
pattern(P) when is_list(P) -> P.

%% @doc The rules for a node: the first matching pattern, else the default.
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

%%% Deciding -------------------------------------------------------------------------

%% @doc Classify one incoming packet and decide on it.
-spec decide(binary(), node(), node_rules()) -> decision().
decide(<<>>, _Node, _Rules) ->
    {accept, tick};
decide(Packet, _Node, _Rules) when byte_size(Packet) > ?MAX_PACKET ->
    {malformed, oversized};
decide(<<?PASS_THROUGH, Rest/binary>>, _Node, Rules) ->
    try binary_to_term(Rest, [safe, used]) of
        {Ctl, Used} when is_tuple(Ctl), tuple_size(Ctl) >= 1, is_integer(element(1, Ctl)) ->
            Payload = binary:part(Rest, Used, byte_size(Rest) - Used),
            control(Ctl, Payload, Rules);
        _ ->
            {malformed, bad_control}
    catch
        error:badarg -> {refuse, undecodable, unknown_atoms_or_garbage}
    end;
decide(_Packet, _Node, _Rules) ->
    {malformed, not_pass_through}.

control({Op, _From, _To}, _P, R) when Op =:= 1; Op =:= 4 -> flag(link, R);
control({Op, _From, _To, _Id}, _P, R) when Op =:= 35; Op =:= 36 -> flag(link, R);
control({Op, _From, _To, _Ref}, _P, R) when Op =:= 19; Op =:= 20 -> flag(monitor, R);
control({21, _From, _To, _Ref, _Reason}, _P, _R) -> {accept, monitor};
control({28, _From, _To, _Ref}, _P, _R) -> {accept, monitor};
control({Op, _From, _To, _Reason}, _P, R) when Op =:= 3 -> flag(exit, R);
control({Op, _From, _To, _Token, _Reason}, _P, R) when Op =:= 13 -> flag(exit, R);
control({Op, _From, _To}, _P, R) when Op =:= 24 -> flag(exit, R);
control({Op, _From, _To, _Token}, _P, R) when Op =:= 25 -> flag(exit, R);
control({Op, _From, _To, _Reason}, _P, R) when Op =:= 8 -> flag(exit2, R);
control({Op, _From, _To, _Token, _Reason}, _P, R) when Op =:= 18 -> flag(exit2, R);
control({Op, _From, _To}, _P, R) when Op =:= 26 -> flag(exit2, R);
control({Op, _From, _To, _Token}, _P, R) when Op =:= 27 -> flag(exit2, R);
control({7, _From, _To}, _P, R) -> flag(group_leader, R);
control({5}, _P, _R) -> {accept, node_link};
control({Op, _ReqId, _To, _Flags, _Result}, _P, _R) when Op =:= 31 -> {accept, spawn_reply};
control({Op, _ReqId, _To, _Flags, _Result, _Token}, _P, _R) when Op =:= 32 -> {accept, spawn_reply};
control({Op, _ReqId, _From, _GL, MFA, _Opts}, P, R) when Op =:= 29 -> spawn_requested(MFA, P, R);
control({Op, _ReqId, _From, _GL, MFA, _Opts, _Token}, P, R) when Op =:= 30 -> spawn_requested(MFA, P, R);
control({Op, _Unused, To}, P, R) when Op =:= 2 -> message(send, {pid, To}, P, R);
control({Op, _Unused, To, _Token}, P, R) when Op =:= 12 -> message(send, {pid, To}, P, R);
control({Op, _From, To}, P, R) when Op =:= 22; Op =:= 33 -> message(send, {pid, To}, P, R);
control({Op, _From, To, _Token}, P, R) when Op =:= 23; Op =:= 34 -> message(send, {pid, To}, P, R);
control({6, _From, _Unused, Name}, P, R) -> message(reg_send, {name, Name}, P, R);
control({16, _From, _Unused, Name, _Token}, P, R) -> message(reg_send, {name, Name}, P, R);
control(Ctl, _P, _R) -> {malformed, {unknown_control, element(1, Ctl)}}.

flag(Kind, Rules) ->
    case maps:get(Kind, Rules) of
        true -> {accept, Kind};
        false -> {refuse, Kind, not_allowed}
    end.

%% rpc:call/erpc:call/Node.spawn arrive as spawn requests; erpc wraps the real call.
spawn_requested({erpc, execute_call, 4}, Payload, R) ->
    with_payload(Payload, fun([_Ref, M, F, A]) when is_list(A) -> rpc_allowed({M, F, length(A)}, R);
                             (_) -> {refuse, spawn_request, bad_erpc_args}
                          end);
spawn_requested({erpc, execute_cast, 3}, Payload, R) ->
    with_payload(Payload, fun([M, F, A]) when is_list(A) -> rpc_allowed({M, F, length(A)}, R);
                             (_) -> {refuse, spawn_request, bad_erpc_args}
                          end);
spawn_requested({M, F, A}, _Payload, R) when is_atom(M), is_atom(F), is_integer(A) ->
    rpc_allowed({M, F, A}, R);
spawn_requested(Other, _Payload, _R) ->
    {refuse, spawn_request, {bad_mfa, Other}}.

rpc_allowed({M, F, _A} = MFA, #{rpc := Allowed}) when is_atom(M), is_atom(F) ->
    case lists:any(fun(P) -> mfa_match(P, MFA) end, Allowed) of
        true -> {accept, spawn_request};
        false -> {refuse, spawn_request, {rpc_not_allowed, MFA}}
    end;
rpc_allowed(MFA, _R) ->
    {refuse, spawn_request, {bad_mfa, MFA}}.

mfa_match(M, {M, _, _}) -> true;
mfa_match({M, F, A}, {M, F2, A2}) -> (F =:= '_' orelse F =:= F2) andalso (A =:= '_' orelse A =:= A2);
mfa_match(_, _) -> false.

message(Kind, Dest, Payload, R) ->
    case destination_allowed(Dest, R) of
        false -> {refuse, Kind, {destination, Dest}};
        true -> with_payload(Payload, fun(Msg) -> message_allowed(Kind, Dest, Msg, R) end)
    end.

destination_allowed({pid, _}, #{send := Send}) -> Send;
destination_allowed({name, Name}, #{names := Names}) -> lists:member(Name, Names).

%% Message shapes that are doors to code execution, whoever receives them.
message_allowed(Kind, Dest, Msg, R) ->
    case door(Dest, Msg) of
        {rpc, MFA} ->
            case rpc_allowed(MFA, R) of
                {accept, _} -> {accept, Kind};
                {refuse, _, Why} -> {refuse, Kind, Why}
            end;
        {refused, Why} ->
            {refuse, Kind, Why};
        none ->
            case maps:get(funs, R) orelse not forbidden_fun(Msg, R) of
                true -> {accept, Kind};
                false -> {refuse, Kind, carries_fun}
            end
    end.

door({name, rex}, {'$gen_call', _, {call, M, F, A, _GL}}) -> {rpc, {M, F, arity(A)}};
door({name, rex}, {'$gen_call', _, {block_call, M, F, A, _GL}}) -> {rpc, {M, F, arity(A)}};
door({name, rex}, {'$gen_cast', {cast, M, F, A, _GL}}) -> {rpc, {M, F, arity(A)}};
door({name, rex}, {_From, features_request}) -> none;
door({name, rex}, {features_reply, _, _}) -> none;
door({name, rex}, _Other) -> {refused, rex_request};
door({name, net_kernel}, {'$gen_call', _, {spawn, M, F, A, _}}) -> {rpc, {M, F, arity(A)}};
door({name, net_kernel}, {'$gen_call', _, {spawn_link, M, F, A, _}}) -> {rpc, {M, F, arity(A)}};
door({name, net_kernel}, {'$gen_call', _, {spawn_opt, M, F, A, _, _}}) -> {rpc, {M, F, arity(A)}};
door(_Dest, {'$gen_call', _, {start_child, _}}) -> {refused, start_child};
door(_Dest, {'$gen_call', _, {restart_child, _}}) -> {refused, start_child};
door(_Dest, {system, _, _}) -> {refused, system_message};
door(_Dest, {io_request, _, _, _}) -> {refused, io_request};
door(_Dest, _Msg) -> none.

arity(A) when is_list(A) -> length(A);
arity(_) -> -1.

%% Payloads of messages whose destination is allowed are decoded without
%% `safe': they may name cluster members this node has not met yet, and the
%% VM creates those atoms anyway when it delivers the message.
with_payload(Payload, Fun) ->
    try binary_to_term(Payload) of
        Term -> Fun(Term)
    catch
        error:badarg -> {refuse, payload, unknown_atoms_or_garbage}
    end.

%% A closure from another node is code to run here. External funs are only
%% names: they are let through when the rpc rules allow them, or when they
%% are `global''s name-clash resolvers, which `global:register_name' sends.
forbidden_fun(T, R) when is_function(T) ->
    case erlang:fun_info(T, type) of
        {type, external} ->
            {module, M} = erlang:fun_info(T, module),
            {name, F} = erlang:fun_info(T, name),
            {arity, A} = erlang:fun_info(T, arity),
            not (lists:member({M, F, A}, ?GLOBAL_RESOLVERS)
                 orelse element(1, rpc_allowed({M, F, A}, R)) =:= accept);
        {type, local} ->
            not global_resolver(T)
    end;
forbidden_fun([H | T], R) -> forbidden_fun(H, R) orelse forbidden_fun(T, R);
forbidden_fun(T, R) when is_tuple(T) -> forbidden_fun(tuple_to_list(T), R);
forbidden_fun(T, R) when is_map(T) -> forbidden_fun(maps:to_list(T), R);
forbidden_fun(_, _R) -> false.

%% Inside `global', `fun random_exit_name/3' is a local fun with no environment.
global_resolver(T) ->
    {module, M} = erlang:fun_info(T, module),
    {name, N} = erlang:fun_info(T, name),
    {env, Env} = erlang:fun_info(T, env),
    M =:= global andalso Env =:= []
        andalso lists:any(fun({_, F, _}) -> string:find(atom_to_list(N), atom_to_list(F)) =/= nomatch end,
                          ?GLOBAL_RESOLVERS).
