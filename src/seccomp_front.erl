%% @doc The front end both back ends (the interpreter of `seccomp_eval'
%% and the compiler of prepared code) share, and the way back from Erlang
%% variables to the user's bindings.
-module(seccomp_front).

-export([front/2, bindings_out/2]).

%% @doc Parse within the atom budget, refuse what cannot be mediated,
%% translate Elixir, and run the mediation pass. Throws
%% `{seccomp_eval_error, Reason}'.
-spec front(iodata() | term(), seccomp_eval:options()) ->
          #{exprs := [erl_parse:abstract_expr()], bindings := erl_eval:binding_struct(),
            state := seccomp_eval:bindings_state(), names := [{atom(), atom()}], new_atoms := non_neg_integer()}.
front(Code, #{language := Lang, max_atoms := MaxAtoms, policy := Policy} = O) ->
    {ok, Parsed, NewAtoms} = ok_or_throw(seccomp_source:parse(Lang, Code, MaxAtoms)),
    {ok, Exprs, Bindings, State, Names} = ok_or_throw(translate(Parsed, O)),
    Markers = seccomp_profiles:spawns(seccomp_policy:spec(Policy)),
    {ok, Mediated} = ok_or_throw(seccomp_rewrite:exprs(Exprs, #{enter_markers => Markers})),
    {ok, Safe} = ok_or_throw(seccomp_compare:exprs(Mediated)),
    #{exprs => Safe, bindings => Bindings, state => State, names => Names, new_atoms => NewAtoms}.

%% @doc The user's bindings from the Erlang variables at the end of a run.
-spec bindings_out(seccomp_eval:bindings_state(), #{atom() => term()}) -> [{atom(), term()}].
bindings_out(erlang, Vars) -> lists:sort(maps:to_list(Vars));
bindings_out({elixir, ExS, ErlS}, Vars) -> seccomp_elixir:dump_bindings(Vars, {ExS, ErlS});
bindings_out({elixir_names, Names}, Vars) -> [{Ex, maps:get(Erl, Vars, nil)} || {Ex, Erl} <- Names].

ok_or_throw({error, Reason}) -> throw({seccomp_eval_error, Reason});
ok_or_throw(Ok) -> Ok.

%% Also returns how the user's variable names map to Erlang's.
translate({erlang, Exprs}, #{bindings := Bs}) ->
    List = binding_list(Bs),
    Bindings = lists:foldl(fun({K, V}, Acc) -> erl_eval:add_binding(K, V, Acc) end,
                           erl_eval:new_bindings(), List),
    {ok, Exprs, Bindings, erlang, [{K, K} || {K, _} <- List]};
translate({elixir, Quoted}, #{bindings := Bs}) ->
    case seccomp_elixir:check_quoted(Quoted) of
        ok ->
            case seccomp_elixir:to_erl(Quoted, binding_list(Bs)) of
                {ok, Exprs, Bindings, {ExS, ErlS}, Names} ->
                    {ok, Exprs, Bindings, {elixir, ExS, ErlS}, Names};
                {error, _} = E -> E
            end;
        {error, _} = E -> E
    end.

binding_list(Bs) when is_map(Bs) -> maps:to_list(Bs);
binding_list(Bs) -> Bs.
