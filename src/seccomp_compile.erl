%% @doc The compiling back end of the sandbox: turns mediated expressions
%% (the output of `seccomp_rewrite') into a BEAM module for prepared code.
%%
%% `erl_eval' sends every call to the handler. Compiled code would call
%% everything directly, so this pass decides each call at compile time:
%%
%% <ul>
%% <li>a remote call to a known `M:F/A' that the policy allows and that the
%%     handler would only pass through stays a direct call;</li>
%% <li>every other call (denied or special functions, variable modules or
%%     functions, calls of fun values, `apply', sends, the markers of the
%%     mediation pass) goes to `seccomp_sandbox:call/3' at run time;</li>
%% <li>operators are calls too: `!' and unbounded bignum arithmetic (`*',
%%     `bsl', `div', `rem') go to the handler, the rest stay operators when the policy allows them;</li>
%% <li>guards cannot call the handler, so bignum arithmetic on two variables
%%     is refused there;</li>
%% <li>`receive' clauses never match a pool's run requests, so code in a
%%     warm process cannot read another caller's bindings.</li>
%% </ul>
%%
%% The module exports `run(Generation, Bindings, Ctx)': `Bindings' maps
%% variable names to values, and the result is `{Value, BoundVariables}', or
%% `released' when the slot now holds another generation.
-module(seccomp_compile).

-export([module/1, unbound/2]).

-type spec() :: #{module := module(), generation := integer(),
                  exprs := [erl_parse:abstract_expr()], inputs := [atom()] | unbound,
                  policy := reference(), optimize := boolean()}.
-type info() :: #{receives := boolean(), inputs := [atom()], outputs := [atom()]}.
-export_type([spec/0, info/0]).

-define(CTX, 'seccomp ctx').
-define(MSG, 'seccomp msg').
-define(VALUE, 'seccomp value').
-define(RUN_TAG, '$seccomp_run').
%% Literal operands this small keep `*' and `bsl' direct: a chain of them is
%% bounded by the length of the source.
-define(SMALL, (1 bsl 32)).

%% @doc Compile prepared code. `inputs' are the variables runs pass in, or
%% `unbound' for every variable the code reads without binding it (Erlang).
%% The outputs are the variables the code binds at the top level, less those
%% the compiler finds unsafe.
-spec module(spec()) -> {ok, binary(), info()} | {error, seccomp_eval:reason()}.
module(#{exprs := Exprs, policy := Policy} = Spec) ->
    try
        Body = [tx(E, Policy) || E <- Exprs],
        Ann = erl_syntax:get_ann(seccomp_compare:annotate_bindings(erl_syntax:block_expr(Body), [])),
        {bound, Bound} = lists:keyfind(bound, 1, Ann),
        compile_forms(with_inputs(Spec#{exprs := Body, outputs => Bound}), receives(Body))
    catch
        throw:{unsafe, Anno, What} -> {error, {unsafe_form, line(Anno), What}};
        %% A malformed tree (not what the mediation pass makes) is unknown syntax too.
        error:_ -> {error, {unsafe_form, 1, "this syntax is not available in prepared code"}};
        throw:{undefined, Anno, F, A} ->
            {error, {compile_error, line(Anno),
                     iolist_to_binary(io_lib:format("undefined function ~ts/~b", [F, A]))}}
    end.

%% @doc Raise the error a missing input gives (called by prepared code).
-spec unbound(map(), [atom()]) -> no_return().
unbound(Bindings, Inputs) ->
    [Missing | _] = [V || V <- Inputs, not is_map_key(V, Bindings)],
    erlang:error({unbound_var, Missing}).

%% The linter knows exactly which variables are unbound.
with_inputs(#{inputs := unbound} = Spec) ->
    Errors = case erl_lint:module(forms(Spec#{inputs := []}), "prepared", [return_errors]) of
                 {ok, _Warnings} -> [];
                 {error, Es, _Warnings} -> Es
             end,
    Spec#{inputs := lists:usort([V || {_File, Es} <- Errors, {_Loc, erl_lint, {unbound_var, V}} <- Es])};
with_inputs(Spec) ->
    Spec.

compile_forms(#{inputs := Inputs, outputs := Outputs, optimize := Optimize} = Spec, Receives) ->
    Forms = forms(Spec),
    %% The SSA optimisations are two thirds of the compile time of typical
    %% rules, and gain little on code that mostly calls library functions.
    Passes = case Optimize of
                 true -> [];
                 false -> [no_ssa_opt]
             end,
    case compile:forms(Forms, [binary, return_errors, no_spawn_compiler_process, nowarn_unused_vars,
                               {source, "prepared"} | Passes]) of
        {ok, _Mod, Bin} ->
            {ok, Bin, #{receives => Receives, inputs => Inputs, outputs => Outputs}};
        {error, Errors, _Warnings} ->
            case unsafe_outputs(Errors) of
                [] -> {error, first_error(Errors)};
                Unsafe -> compile_forms(Spec#{outputs := Outputs -- Unsafe}, Receives)
            end
    end.

unsafe_outputs(Errors) ->
    [V || {_File, Es} <- Errors, {_Loc, erl_lint, {unsafe_var, V, _}} <- Es].

first_error([{_File, [{Loc, Mod, Desc} | _]} | _]) ->
    {compile_error, loc_line(Loc), unicode:characters_to_binary(Mod:format_error(Desc))};
first_error(_) ->
    {compile_error, 1, <<"the prepared code does not compile">>}.

loc_line({L, _}) when is_integer(L) -> max(L, 1);
loc_line(L) when is_integer(L) -> max(L, 1);
loc_line(_) -> 1.

line(Anno) ->
    case erl_anno:line(Anno) of
        L when is_integer(L), L > 0 -> L;
        _ -> 1
    end.

forms(#{module := Mod, generation := Gen, exprs := Body, inputs := Inputs, outputs := Outputs}) ->
    A = erl_anno:new(1),
    Var = fun(N) -> {var, A, N} end,
    InputPattern = {map, A, [{map_field_exact, A, {atom, A, N}, Var(N)} || N <- Inputs]},
    OutputMap = {map, A, [{map_field_assoc, A, {atom, A, N}, Var(N)} || N <- Outputs]},
    Run = [{match, A, Var(?VALUE), {block, A, Body}}, {tuple, A, [Var(?VALUE), OutputMap]}],
    Missing = {call, A, {remote, A, {atom, A, ?MODULE}, {atom, A, unbound}},
               [Var('Bindings'), erl_parse:abstract(Inputs)]},
    Case = {'case', A, Var('Bindings'),
            [{clause, A, [InputPattern], [], Run},
             {clause, A, [{var, A, '_'}], [], [Missing]}]},
    Clauses = [{clause, A, [{integer, A, Gen}, Var('Bindings'), Var(?CTX)], [], [Case]},
               {clause, A, [{var, A, '_'}, {var, A, '_'}, {var, A, '_'}], [], [{atom, A, released}]}],
    [{attribute, A, module, Mod}, {attribute, A, export, [{run, 3}]},
     {function, A, run, 3, Clauses}].

%%% The call pass --------------------------------------------------------------

tx({call, A, {remote, _, {atom, _, '$seccomp'}, {atom, _, Name}}, Args}, P) ->
    handler(A, {tuple, A, [{atom, A, '$seccomp'}, {atom, A, Name}]}, Args, P);
tx({call, A, {remote, RA, {atom, _, M} = ME, {atom, _, F} = FE}, Args}, P) ->
    case static(M, F, length(Args), P) of
        true -> {call, A, {remote, RA, ME, FE}, txs(Args, P)};
        false ->
            case dispatching(M, F, length(Args), P) of
                true -> call(A, seccomp_sandbox, dispatch, [ME, FE, list(A, Args, P), {var, A, ?CTX}]);
                false -> handler(A, {tuple, A, [ME, FE]}, Args, P)
            end
    end;
tx({call, A, {remote, _, ME, FE}, Args}, P) ->
    handler(A, {tuple, A, [tx(ME, P), tx(FE, P)]}, Args, P);
tx({call, A, {atom, AA, F}, Args}, P) ->
    case erl_internal:bif(F, length(Args)) of
        true -> tx({call, A, {remote, AA, {atom, AA, erlang}, {atom, AA, F}}, Args}, P);
        false -> throw({undefined, A, F, length(Args)})
    end;
tx({call, A, FunExpr, Args}, P) ->
    handler(A, tx(FunExpr, P), Args, P);
tx({'case', A, Subject, [_, _, _] = Clauses} = Case, P) ->
    case field_access(Clauses) of
        {ok, Field} -> call(A, seccomp_sandbox, field, [tx(Subject, P), {atom, A, Field}, {var, A, ?CTX}]);
        error -> generic(Case, P)
    end;
tx({op, A, Op, L, R}, P) when Op =:= 'andalso'; Op =:= 'orelse' ->
    {op, A, Op, tx(L, P), tx(R, P)};
tx({op, A, Op, L, R}, P) ->
    case {direct_op(Op, L, R), static(erlang, Op, 2, P) orelse literal_comparison(Op, L, R, P),
          bignum(Op, P)} of
        {true, true, _} -> {op, A, Op, tx(L, P), tx(R, P)};
        {_, _, true} -> call(A, seccomp_sandbox_bounds, arith, [{atom, A, Op}, tx(L, P), tx(R, P), {var, A, ?CTX}]);
        _ -> handler(A, {tuple, A, [{atom, A, erlang}, {atom, A, Op}]}, [L, R], P)
    end;
tx({op, A, Op, X}, P) ->
    case static(erlang, Op, 1, P) of
        true -> {op, A, Op, tx(X, P)};
        false -> handler(A, {tuple, A, [{atom, A, erlang}, {atom, A, Op}]}, [X], P)
    end;
tx({match, A, Pattern, E}, P) ->
    {match, A, pattern(Pattern), tx(E, P)};
tx({clause, A, Patterns, Guards, Body}, P) when is_list(Patterns), is_list(Guards) ->
    [safe_guard(T) || Conj <- Guards, T <- Conj],
    {clause, A, [pattern(Pt) || Pt <- Patterns], Guards, txs(Body, P)};
tx({'receive', A, Cs}, P) ->
    {'receive', A, [receive_clause(C, P) || C <- Cs]};
tx({'receive', A, Cs, T, After}, P) ->
    {'receive', A, [receive_clause(C, P) || C <- Cs], tx(T, P), txs(After, P)};
tx({Gen, A, Pattern, E}, P) when Gen =:= generate; Gen =:= generate_strict;
                                 Gen =:= b_generate; Gen =:= b_generate_strict;
                                 Gen =:= m_generate; Gen =:= m_generate_strict ->
    {Gen, A, pattern(Pattern), tx(E, P)};
tx({zip, A, Gens}, P) when is_list(Gens) ->
    {zip, A, txs(Gens, P)};
tx({Leaf, _A, _Value} = E, _P) when Leaf =:= atom; Leaf =:= char; Leaf =:= float;
                                    Leaf =:= integer; Leaf =:= string; Leaf =:= var ->
    E;
tx({nil, _A} = E, _P) ->
    E;
tx({'fun', A, {clauses, Cs}}, P) when is_list(Cs) ->
    {'fun', A, {clauses, txs(Cs, P)}};
tx({bin_element, A, Value, Size, Type}, P) ->
    {bin_element, A, tx(Value, P), case Size of default -> default; _ -> tx(Size, P) end, Type};
tx({Tag, _A, _, _} = E, P) when Tag =:= cons; Tag =:= named_fun; Tag =:= 'case';
                                Tag =:= map_field_assoc; Tag =:= map_field_exact;
                                Tag =:= lc; Tag =:= bc; Tag =:= mc ->
    generic(E, P);
tx({Tag, _A, _} = E, P) when Tag =:= tuple; Tag =:= map; Tag =:= bin; Tag =:= block;
                             Tag =:= 'if'; Tag =:= 'catch' ->
    generic(E, P);
tx({'try', _A, _, _, _, _} = E, P) ->
    generic(E, P);
tx({map, _A, _Base, _Fields} = E, P) ->
    generic(E, P);
tx(Form, _P) ->
    unknown(Form).

%% Default deny: what this pass does not know stays out of compiled code.
-spec unknown(term()) -> no_return().
unknown(Form) ->
    throw({unsafe, seccomp_rewrite:anno(Form), "this syntax is not available in prepared code"}).

%% Patterns hold no calls: the mediation pass left only these node types
%% (map keys and binary sizes are guard expressions).
pattern(Pattern) ->
    ok = check_pattern(Pattern),
    Pattern.

check_pattern({Leaf, _A, _Value}) when Leaf =:= atom; Leaf =:= char; Leaf =:= float;
                                       Leaf =:= integer; Leaf =:= string; Leaf =:= var ->
    ok;
check_pattern({nil, _A}) -> ok;
check_pattern({Tag, _A, L, R}) when Tag =:= cons; Tag =:= match -> check_patterns([L, R]);
check_pattern({tuple, _A, Ps}) when is_list(Ps) -> check_patterns(Ps);
check_pattern({op, _A, _Op, X}) -> check_pattern(X);
check_pattern({op, _A, _Op, L, R}) -> check_patterns([L, R]);
check_pattern({map, _A, Fields}) when is_list(Fields) ->
    check_patterns([case F of {map_field_exact, _, _K, V} -> V; _ -> unknown(F) end || F <- Fields]);
check_pattern({bin, _A, Elements}) when is_list(Elements) ->
    check_patterns([case E of {bin_element, _, V, _Size, _Type} -> V; _ -> unknown(E) end
                    || E <- Elements]);
check_pattern(Other) ->
    unknown(Other).

check_patterns(Ps) -> lists:foreach(fun check_pattern/1, Ps).

generic(T, P) ->
    list_to_tuple([element(1, T), element(2, T) | [sub(X, P) || X <- tl(tl(tuple_to_list(T)))]]).

%% Elixir's `var.field': a map's field, else a call of the module the
%% variable names, else `badkey'. One helper call instead of three clauses
%% (one a checked dynamic call) keeps long rules quick to compile.
field_access([{clause, _, [{map, _, [{map_field_exact, _, {atom, _, F}, {var, _, V}}]}], [], [{var, _, V}]},
              {clause, _, [{var, _, M}], [_], [{call, _, {remote, _, {var, _, M}, {atom, _, F}}, []}]},
              {clause, _, [{var, _, E}], [],
               [{call, _, {remote, _, {atom, _, erlang}, {atom, _, error}},
                 [{tuple, _, [{atom, _, badkey}, {atom, _, F}, {var, _, E}]}]}]}]) ->
    {ok, F};
field_access(_) ->
    error.

sub(L, P) when is_list(L) -> [sub(X, P) || X <- L];
sub(T, P) when is_tuple(T), tuple_size(T) >= 2 -> tx(T, P);
sub(X, _P) -> X.

txs(Es, P) -> [tx(E, P) || E <- Es].

%% `seccomp_sandbox:call(Callee, [Args], Ctx)'.
handler(A, Callee, Args, P) ->
    call(A, seccomp_sandbox, call, [Callee, list(A, Args, P), {var, A, ?CTX}]).

list(A, Args, P) ->
    lists:foldr(fun(X, Acc) -> {cons, A, tx(X, P), Acc} end, {nil, A}, Args).

call(A, M, F, Args) ->
    {call, A, {remote, A, {atom, A, M}, {atom, A, F}}, Args}.

static(M, F, Arity, Policy) ->
    seccomp_sandbox_calls:direct(M, F, Arity) andalso allows(Policy, M, F, Arity).

allows(Policy, M, F, Arity) -> seccomp_nif:check_with(Policy, M, F, Arity) =:= allow.

%% An allowed call whose only special handling is the forged-struct scan
%% (`Enum', `Map' and other protocol-dispatching modules).
dispatching(M, F, Arity, Policy) ->
    seccomp_sandbox_calls:direct_but_dispatch(M, F, Arity) andalso allows(Policy, M, F, Arity).

%% An allowed operator whose only special handling is the bignum bound.
bignum(Op, Policy) -> lists:member(Op, ['*', 'bsl', 'div', 'rem']) andalso allows(Policy, erlang, Op, 2).

%% A comparison with a literal stops within the literal's size: no bound needed.
literal_comparison(Op, L, R, P) ->
    seccomp_profiles:is_comparison(Op) andalso (literal(L) orelse literal(R))
        andalso allows(P, erlang, Op, 2).

literal(E) ->
    try erl_parse:normalise(E) of _ -> true
    catch _:_ -> false
    end.

%% `!' checks its destination; `*' and `bsl' check their operands' sizes,
%% unless a small literal keeps the result bounded.
direct_op('!', _L, _R) -> false;
direct_op('*', L, R) -> small(L) orelse small(R);
direct_op('bsl', _L, R) -> small_shift(R);
%% Division by a one-word divisor is linear in the dividend.
direct_op(Op, _L, R) when Op =:= 'div'; Op =:= 'rem' -> small(R);
direct_op(_Op, _L, _R) -> true.

small({integer, _, N}) -> abs(N) < ?SMALL;
small({op, _, '-', {integer, _, N}}) -> abs(N) < ?SMALL;
small(_) -> false.

small_shift({integer, _, N}) -> N =< 64;
small_shift(_) -> false.

safe_guard({op, A, Op, L, R}) ->
    direct_op(Op, L, R) orelse throw({unsafe, A, "bignum arithmetic on two variables is not "
                                                  "allowed in guards of prepared code"}),
    safe_guard(L),
    safe_guard(R);
safe_guard({call, A, {remote, _, {atom, _, erlang}, {atom, _, Op}}, [L, R]})
  when Op =:= '*'; Op =:= 'bsl'; Op =:= 'div'; Op =:= 'rem' ->
    safe_guard({op, A, Op, L, R});
safe_guard(T) when is_tuple(T) -> [safe_guard(X) || X <- tuple_to_list(T)], ok;
safe_guard(L) when is_list(L) -> [safe_guard(X) || X <- L], ok;
safe_guard(_) -> ok.

%% A receive clause that cannot take a pool's run request.
receive_clause({clause, A, [Pattern], Guards, Body}, P) ->
    Msg = {var, A, ?MSG},
    NotRequest = {op, A, 'orelse', {op, A, 'not', {call, A, {atom, A, is_tuple}, [Msg]}},
                  {op, A, 'orelse',
                   {op, A, '=:=', {call, A, {atom, A, tuple_size}, [Msg]}, {integer, A, 0}},
                   {op, A, '=/=', {call, A, {atom, A, element}, [{integer, A, 1}, Msg]},
                    {atom, A, ?RUN_TAG}}}},
    Guards1 = case Guards of
                  [] -> [[NotRequest]];
                  _ -> [Conj ++ [NotRequest] || Conj <- Guards]
              end,
    tx({clause, A, [{match, A, Pattern, Msg}], Guards1, Body}, P).

receives(T) when is_tuple(T), element(1, T) =:= 'receive' -> true;
receives(T) when is_tuple(T) -> receives(tuple_to_list(T));
receives(L) when is_list(L) -> lists:any(fun receives/1, L);
receives(_) -> false.
