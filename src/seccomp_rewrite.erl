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
%% <li>map keys computed at run time go through `'$seccomp':key/1', which
%%     bounds what the map hashes and compares;</li>
%% <li>binary sizes in constructions, literal ones above 64 included, go
%%     through `'$seccomp':size/2', so a single expression cannot allocate
%%     more than the binary limit;</li>
%% <li>when the policy lets the code spawn, each fun body starts with
%%     `'$seccomp':enter()', so a process that compiled code starts on the
%%     sandbox's behalf joins the sandbox before it runs user code.</li>
%% </ul>
-module(seccomp_rewrite).

-export([exprs/2, anno/1]).

-type opts() :: #{enter_markers := boolean()}.

%% @doc Rewrite a list of expressions, or explain why they are refused.
-spec exprs([erl_parse:abstract_expr()], opts()) ->
          {ok, [erl_parse:abstract_expr()]} | {error, {unsafe_form, pos_integer(), string()}}.
exprs(Exprs, Opts) ->
    try
        {ok, [expr(E, Opts) || E <- Exprs]}
    catch
        throw:{unsafe, Anno, What} -> {error, {unsafe_form, line(Anno), What}};
        %% A malformed tree (not what a parser makes) is unknown syntax too.
        error:_ -> {error, {unsafe_form, 1, "this syntax is not available in the sandbox"}}
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
expr({bin, A, Elements}, O) when is_list(Elements) ->
    case lists:any(fun unsized/1, Elements) of
        false -> {bin, A, [bin_element(E, O) || E <- Elements]};
        true -> marker(A, concat, [parts(A, Elements, O)])
    end;
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
    {lc, A, template(E, O), [qualifier(Q, O) || Q <- Qs]};
expr({bc, A, E, Qs}, O) ->
    {bc, A, template(E, O), [qualifier(Q, O) || Q <- Qs]};
expr({mc, A, E, Qs}, O) ->
    {mc, A, template(E, O), [qualifier(Q, O) || Q <- Qs]};
expr({record, A, _, _}, _O) ->
    throw({unsafe, A, "records are not available in the sandbox"});
expr({record, A, _, _, _}, _O) ->
    throw({unsafe, A, "records are not available in the sandbox"});
expr({record_field, A, _, _, _}, _O) ->
    throw({unsafe, A, "records are not available in the sandbox"});
expr({record_index, A, _, _}, _O) ->
    throw({unsafe, A, "records are not available in the sandbox"});
expr({Leaf, _A, _Value} = E, _O) when Leaf =:= atom; Leaf =:= char; Leaf =:= float;
                                      Leaf =:= integer; Leaf =:= string; Leaf =:= var ->
    E;
expr({nil, _A} = E, _O) ->
    E;
expr({cons, A, H, T}, O) ->
    {cons, A, expr(H, O), expr(T, O)};
expr({tuple, A, Es}, O) when is_list(Es) ->
    {tuple, A, exprs_(Es, O)};
expr({map, A, Fields}, O) when is_list(Fields) ->
    {map, A, [map_field(F, O) || F <- Fields]};
expr({map, A, Base, Fields}, O) when is_list(Fields) ->
    {map, A, expr(Base, O), [map_field(F, O) || F <- Fields]};
expr({op, A, Op, X}, O) when is_atom(Op) ->
    {op, A, Op, expr(X, O)};
expr({op, A, Op, L, R}, O) when is_atom(Op) ->
    {op, A, Op, expr(L, O), expr(R, O)};
expr({call, A, {remote, RA, M, F}, Args}, O) when is_list(Args) ->
    {call, A, {remote, RA, expr(M, O), expr(F, O)}, exprs_(Args, O)};
expr({call, A, F, Args}, O) when is_list(Args) ->
    {call, A, expr(F, O), exprs_(Args, O)};
expr({block, A, Es}, O) when is_list(Es) ->
    {block, A, exprs_(Es, O)};
expr({'catch', A, E}, O) ->
    {'catch', A, expr(E, O)};
expr(Form, _O) ->
    unknown(Form).

%% Default deny: syntax this pass does not know (a newer OTP's) could hide
%% calls from it, so it is refused until it is mediated here.
-spec unknown(term()) -> no_return().
unknown(Form) ->
    throw({unsafe, anno(Form), "this syntax is not available in the sandbox"}).

%% @doc The annotation of an abstract-format node, or line 1 for what is not one.
-spec anno(term()) -> erl_anno:anno().
anno(Form) when is_tuple(Form), tuple_size(Form) >= 2 ->
    case erl_anno:is_anno(element(2, Form)) of
        true -> element(2, Form);
        false -> erl_anno:new(1)
    end;
anno(_Form) ->
    erl_anno:new(1).

exprs_(Es, O) when is_list(Es) -> [expr(E, O) || E <- Es];
exprs_(Other, _O) -> unknown(Other).

%% A comprehension's template: one expression, or several (OTP 29's
%% multi-valued comprehensions).
template(Es, O) when is_list(Es) -> [template_item(E, O) || E <- Es];
template(E, O) -> template_item(E, O).

template_item({map_field_assoc, A, K, V}, O) -> {map_field_assoc, A, expr(K, O), expr(V, O)};
%% A comprehension's template grows its result one step at a time: its own
%% segments are built in place (each a piece of an existing term).
template_item({bin, A, Elements}, O) when is_list(Elements) -> {bin, A, [bin_element(E, O) || E <- Elements]};
template_item(E, O) -> expr(E, O).

map_field({Kind, A, K, V}, O) when Kind =:= map_field_assoc; Kind =:= map_field_exact ->
    {Kind, A, map_key(K, O), expr(V, O)};
map_field(Other, _O) ->
    unknown(Other).

%% A key the map hashes and compares in one step: one computed at run time
%% goes through `'$seccomp':key/1', which bounds its flattened size.
map_key({Leaf, _A, _V} = K, _O) when Leaf =:= atom; Leaf =:= integer; Leaf =:= float; Leaf =:= char ->
    K;
map_key(K, O) ->
    marker(anno(K), key, [expr(K, O)]).

%% Generators (lazy or strict), zipped generators (`&&') and filters.
qualifier({Gen, A, P, E}, O) when Gen =:= generate; Gen =:= generate_strict;
                                  Gen =:= b_generate; Gen =:= b_generate_strict ->
    {Gen, A, pattern(P, O), expr(E, O)};
qualifier({Gen, A, {map_field_exact, FA, K, V}, E}, O) when Gen =:= m_generate; Gen =:= m_generate_strict ->
    {map, _, [Field]} = pattern({map, FA, [{map_field_exact, FA, K, V}]}, O),
    {Gen, A, Field, expr(E, O)};
qualifier({zip, A, Gens}, O) when is_list(Gens), Gens =/= [] ->
    {zip, A, [generator(G, O) || G <- Gens]};
qualifier(Filter, O) -> expr(Filter, O).

generator({Gen, _, _, _} = G, O) when Gen =:= generate; Gen =:= generate_strict;
                                      Gen =:= b_generate; Gen =:= b_generate_strict;
                                      Gen =:= m_generate; Gen =:= m_generate_strict ->
    qualifier(G, O);
generator(Other, _O) ->
    unknown(Other).

clause({clause, A, Ps, Guards, Body}, O) when is_list(Ps), is_list(Guards) ->
    {clause, A, [pattern(P, O) || P <- Ps], [guard_seq(G) || G <- Guards], exprs_(Body, O)};
clause(Other, _O) ->
    unknown(Other).

fun_clause({clause, A, Ps, Guards, Body}, #{enter_markers := true} = O) ->
    {clause, A, Ps1, Gs, Body1} = clause({clause, A, Ps, Guards, Body}, O),
    {clause, A, Ps1, Gs, [marker(A, enter, []) | Body1]};
fun_clause(C, O) ->
    clause(C, O).

%% Guards: erl_eval only accepts guard tests, and evaluates them with the
%% handler; we refuse anything else up front with a clear message.
guard_seq(Tests) when is_list(Tests) ->
    lists:foreach(fun(T) ->
                          erl_lint:is_guard_test(T)
                              orelse throw({unsafe, anno(T), "only guard expressions are allowed in guards"})
                  end, Tests),
    Tests;
guard_seq(Other) ->
    unknown(Other).

bin_element({bin_element, A, Value, default, Type}, O) ->
    {bin_element, A, expr(Value, O), default, Type};
bin_element({bin_element, A, Value, {integer, _, N} = Size, Type}, O) when N =< 64 ->
    {bin_element, A, expr(Value, O), Size, Type};
bin_element({bin_element, A, Value, Size, Type}, O) ->
    {bin_element, A, expr(Value, O), marker(A, size, [expr(Size, O), unit(Type)]), Type};
bin_element(Other, _O) ->
    unknown(Other).

%% A segment whose size is that of its value, computed at run time: one
%% construction can join existing binaries into one as large as all of
%% them (`a <> a', doubling), so the total is bounded before the VM
%% allocates it.
unsized({bin_element, _A, Value, default, Type}) when is_list(Type) ->
    not is_literal(Value) andalso lists:any(fun(T) -> lists:member(T, [binary, bytes, bitstring, bits]) end, Type);
unsized(_) ->
    false.

is_literal({Leaf, _, _}) when Leaf =:= string; Leaf =:= integer; Leaf =:= char; Leaf =:= float -> true;
is_literal(_) -> false.

%% The segments as a list for `'$seccomp':concat/1': a whole binary or
%% bitstring as it is (with its type, checked there), any other segment
%% built on its own (its size is bounded like any segment's).
parts(A, Elements, O) ->
    lists:foldr(fun(E, Acc) -> {cons, A, part(A, E, O), Acc} end, {nil, A}, Elements).

part(A, {bin_element, EA, Value, default, Type} = E, O) when is_list(Type) ->
    case Type of
        [T] when T =:= binary; T =:= bytes -> {tuple, A, [{atom, A, binary}, expr(Value, O)]};
        [T] when T =:= bitstring; T =:= bits -> {tuple, A, [{atom, A, bitstring}, expr(Value, O)]};
        _ -> {tuple, A, [{atom, A, bitstring}, {bin, EA, [bin_element(E, O)]}]}
    end;
part(A, E, O) ->
    {tuple, A, [{atom, A, bitstring}, {bin, A, [bin_element(E, O)]}]}.

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

%% erl_eval evaluates map keys and binary sizes in patterns without any
%% handler: only guard expressions there.
pattern({map, A, Fields}, O) when is_list(Fields) ->
    {map, A, [map_pattern_field(F, O) || F <- Fields]};
pattern({Leaf, _A, _Value} = P, _O) when Leaf =:= atom; Leaf =:= char; Leaf =:= float;
                                         Leaf =:= integer; Leaf =:= string; Leaf =:= var ->
    P;
pattern({nil, _A} = P, _O) ->
    P;
pattern({cons, A, H, T}, O) ->
    {cons, A, pattern(H, O), pattern(T, O)};
pattern({tuple, A, Ps}, O) when is_list(Ps) ->
    {tuple, A, [pattern(P, O) || P <- Ps]};
pattern({match, A, L, R}, O) ->
    {match, A, pattern(L, O), pattern(R, O)};
pattern({op, A, Op, X}, O) when is_atom(Op) ->
    {op, A, Op, pattern(X, O)};
pattern({op, A, Op, L, R}, O) when is_atom(Op) ->
    {op, A, Op, pattern(L, O), pattern(R, O)};
pattern({bin, A, Elements}, O) when is_list(Elements) ->
    {bin, A, [bin_pattern_element(E, O) || E <- Elements]};
pattern({Record, A, _, _}, _O) when Record =:= record; Record =:= record_index ->
    throw({unsafe, A, "records are not available in the sandbox"});
pattern(Other, _O) ->
    unknown(Other).

bin_pattern_element({bin_element, A, Value, Size, Type}, O) ->
    Size =:= default orelse erl_lint:is_guard_expr(Size)
        orelse throw({unsafe, A, "binary sizes in patterns must be guard expressions"}),
    {bin_element, A, pattern(Value, O), Size, Type};
bin_pattern_element(Other, _O) ->
    unknown(Other).

map_pattern_field({map_field_exact, A, Key, Value}, O) ->
    case erl_lint:is_guard_expr(Key) of
        true -> {map_field_exact, A, Key, pattern(Value, O)};
        false -> throw({unsafe, A, "map keys in patterns must be guard expressions"})
    end;
map_pattern_field(Other, _O) ->
    unknown(Other).
