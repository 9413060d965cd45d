%% @doc The mediation pass: rewrites Erlang abstract expressions (parsed from
%% Erlang source or translated from Elixir) so that nothing they do escapes
%% the sandbox's function handler.
%%
%% `erl_eval' routes remote calls, operators, BIFs and calls of compiled funs
%% to the handler, but not everything. This pass closes the gaps:
%%
%% <ul>
%% <li>`fun M:F/A' values become `'$seccomp':make_fun(M, F, A)' calls, which
%%     return funs that check every call, even when compiled code (`lists:map',
%%     `Enum.map') calls them;</li>
%% <li>map keys in patterns are evaluated by `erl_eval' without the handler,
%%     so only guard expressions are accepted there;</li>
%% <li>binary sizes in constructions, literal ones above 64 included, go
%%     through `'$seccomp':size/2', so a single expression cannot allocate
%%     more than the binary limit;</li>
%% <li>when the policy lets the code spawn, each fun body starts with
%%     `'$seccomp':enter()', so a process that compiled code starts on the
%%     sandbox's behalf joins the sandbox before it runs user code.</li>
%% </ul>
-module(seccomp_rewrite).

-export([exprs/2]).

-type opts() :: #{enter_markers := boolean()}.

%% @doc Rewrite a list of expressions, or explain why they are refused.
-spec exprs([erl_parse:abstract_expr()], opts()) ->
          {ok, [erl_parse:abstract_expr()]} | {error, {unsafe_form, pos_integer(), string()}}.
exprs(Exprs, Opts) ->
    try
        {ok, [expr(E, Opts) || E <- Exprs]}
    catch
        throw:{unsafe, Anno, What} -> {error, {unsafe_form, line(Anno), What}}
    end.

line(Anno) ->
    case erl_anno:line(Anno) of
        L when is_integer(L), L > 0 -> L;
        _ -> 1
    end.

marker(A, Name, Args) ->
    {call, A, {remote, A, {atom, A, '$seccomp'}, {atom, A, Name}}, Args}.

%%% Expressions -------------------------------------------------------------

expr({'fun', A, {function, M, F, Arity}}, O) when is_tuple(M), is_tuple(F), is_tuple(Arity) ->
    marker(A, make_fun, [expr(M, O), expr(F, O), expr(Arity, O)]);
expr({'fun', A, {function, M, F, Arity}}, _O) when is_atom(M), is_atom(F), is_integer(Arity) ->
    marker(A, make_fun, [{atom, A, M}, {atom, A, F}, {integer, A, Arity}]);
expr({'fun', A, {clauses, Cs}}, O) ->
    {'fun', A, {clauses, [fun_clause(C, O) || C <- Cs]}};
expr({named_fun, A, Name, Cs}, O) ->
    {named_fun, A, Name, [fun_clause(C, O) || C <- Cs]};
expr({'fun', A, {function, _Name, _Arity}}, _O) ->
    throw({unsafe, A, "local fun references are not available in the sandbox"});
expr({bin, A, Elements}, O) ->
    {bin, A, [bin_element(E, O) || E <- Elements]};
expr({match, A, P, E}, O) ->
    {match, A, pattern(P, O), expr(E, O)};
expr({'case', A, E, Cs}, O) ->
    {'case', A, expr(E, O), [clause(C, O) || C <- Cs]};
expr({'receive', A, Cs}, O) ->
    {'receive', A, [clause(C, O) || C <- Cs]};
expr({'receive', A, Cs, T, After}, O) ->
    {'receive', A, [clause(C, O) || C <- Cs], expr(T, O), exprs_(After, O)};
expr({'try', A, Body, Cs, Handlers, After}, O) ->
    {'try', A, exprs_(Body, O), [clause(C, O) || C <- Cs], [clause(C, O) || C <- Handlers],
     exprs_(After, O)};
expr({'if', A, Cs}, O) ->
    {'if', A, [clause(C, O) || C <- Cs]};
expr({'maybe', A, _}, _O) ->
    throw({unsafe, A, "maybe expressions are not supported"});
expr({lc, A, E, Qs}, O) ->
    {lc, A, expr(E, O), [qualifier(Q, O) || Q <- Qs]};
expr({bc, A, E, Qs}, O) ->
    {bc, A, expr(E, O), [qualifier(Q, O) || Q <- Qs]};
expr({mc, A, E, Qs}, O) ->
    {mc, A, expr(E, O), [qualifier(Q, O) || Q <- Qs]};
expr({record, A, _, _}, _O) ->
    throw({unsafe, A, "records are not available in the sandbox"});
expr({record, A, _, _, _}, _O) ->
    throw({unsafe, A, "records are not available in the sandbox"});
expr({record_field, A, _, _, _}, _O) ->
    throw({unsafe, A, "records are not available in the sandbox"});
expr({record_index, A, _, _}, _O) ->
    throw({unsafe, A, "records are not available in the sandbox"});
expr(T, O) when is_tuple(T) ->
    list_to_tuple([element(1, T) | [sub(X, O) || X <- tl(tuple_to_list(T))]]);
expr(Other, _O) ->
    Other.

%% Generic descent into the children of a node.
sub(L, O) when is_list(L) -> [sub(X, O) || X <- L];
sub(T, O) when is_tuple(T), tuple_size(T) >= 2 -> expr(T, O);
sub(X, _O) -> X.

exprs_(Es, O) -> [expr(E, O) || E <- Es].

qualifier({generate, A, P, E}, O) -> {generate, A, pattern(P, O), expr(E, O)};
qualifier({b_generate, A, P, E}, O) -> {b_generate, A, pattern(P, O), expr(E, O)};
qualifier({m_generate, A, P, E}, O) -> {m_generate, A, pattern(P, O), expr(E, O)};
qualifier(Filter, O) -> expr(Filter, O).

clause({clause, A, Ps, Guards, Body}, O) ->
    {clause, A, [pattern(P, O) || P <- Ps], [guard_seq(G) || G <- Guards], exprs_(Body, O)}.

fun_clause({clause, A, Ps, Guards, Body}, #{enter_markers := true} = O) ->
    {clause, A, Ps1, Gs, Body1} = clause({clause, A, Ps, Guards, Body}, O),
    {clause, A, Ps1, Gs, [marker(A, enter, []) | Body1]};
fun_clause(C, O) ->
    clause(C, O).

%% Guards: erl_eval only accepts guard tests, and evaluates them with the
%% handler; we refuse anything else up front with a clear message.
guard_seq(Tests) ->
    lists:foreach(fun(T) ->
                          erl_lint:is_guard_test(T)
                              orelse throw({unsafe, element(2, T), "only guard expressions are allowed in guards"})
                  end, Tests),
    Tests.

bin_element({bin_element, A, Value, default, Type}, O) ->
    {bin_element, A, expr(Value, O), default, Type};
bin_element({bin_element, A, Value, {integer, _, N} = Size, Type}, O) when N =< 64 ->
    {bin_element, A, expr(Value, O), Size, Type};
bin_element({bin_element, A, Value, Size, Type}, O) ->
    {bin_element, A, expr(Value, O), marker(A, size, [expr(Size, O), unit(Type)]), Type}.

%% The unit of a segment, so the size check can count bits.
unit(Types) when is_list(Types) ->
    Units = [U || {unit, U} <- Types],
    Default = case lists:member(binary, Types) orelse lists:member(bytes, Types) of
                  true -> 8;
                  false -> 1
              end,
    {integer, erl_anno:new(0), case Units of [U | _] -> U; [] -> Default end};
unit(default) ->
    {integer, erl_anno:new(0), 1}.

%%% Patterns ------------------------------------------------------------------

%% erl_eval evaluates map keys in patterns without any handler.
pattern({map, A, Fields}, O) ->
    {map, A, [map_pattern_field(F, O) || F <- Fields]};
pattern({map, A, Base, Fields}, O) ->
    {map, A, pattern(Base, O), [map_pattern_field(F, O) || F <- Fields]};
pattern(T, O) when is_tuple(T) ->
    list_to_tuple([element(1, T) | [pattern_sub(X, O) || X <- tl(tuple_to_list(T))]]);
pattern(Other, _O) ->
    Other.

pattern_sub(L, O) when is_list(L) -> [pattern_sub(X, O) || X <- L];
pattern_sub(T, O) when is_tuple(T), tuple_size(T) >= 2 -> pattern(T, O);
pattern_sub(X, _O) -> X.

map_pattern_field({Kind, A, Key, Value}, O) ->
    case erl_lint:is_guard_expr(Key) of
        true -> {Kind, A, Key, pattern(Value, O)};
        false -> throw({unsafe, A, "map keys in patterns must be guard expressions"})
    end.
