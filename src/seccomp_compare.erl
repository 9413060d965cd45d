%% @doc The comparison pass: bounds the terms that patterns and guards compare
%% or hash inline, where no handler sees them.
%%
%% A term built by sharing (`{T, T}' forty times over) is a few hundred words
%% on the heap and 2^40 nodes flattened; comparing two of them, or hashing one,
%% is one built-in that neither yields nor can be killed. The handler bounds
%% the comparisons it sees (operators in `erl_eval', calls). Patterns and
%% guards compare without it, in both back ends: a bound variable in a
%% pattern (Elixir's `^t'), a variable repeated in one pattern (`{x, x}'), a
%% map key in a pattern, and guard comparisons (`==', `<', `in', `is_map_key'
%% ...) between two terms that are not literals.
%%
%% A comparison stops at the end of its smaller operand, so one operand
%% within the copy bound bounds it. For every `case', `receive', `if',
%% `try', match, fun and comprehension generator whose patterns or guards
%% compare something that is not a literal, this pass inserts, right before
%% the construct, `'$seccomp':key/1' (the handler's flattened-size bound) on
%% every variable from outside the construct that they compare; and where
%% they compare two parts of the matched value with each other, on the value
%% itself (the case subject, a fun's arguments, a match's right side, a
%% generator's list). Messages are copies (flat) and need none. A catch
%% clause that compares two parts of the exception is refused.
%%
%% Default deny: every variable a pattern uses from outside, every repeated
%% variable and every guard comparison counts, unless an operand is a
%% literal or a size or arithmetic built-in.
-module(seccomp_compare).

-export([exprs/1, annotate_bindings/2]).

-define(ARG(N), list_to_atom("seccomp arg " ++ integer_to_list(N))).

%% @doc Insert the bounds into a list of (mediated) expressions.
-spec exprs([erl_parse:abstract_expr()]) ->
          {ok, [erl_parse:abstract_expr()]} | {error, {unsafe_form, pos_integer(), string()}}.
exprs([]) ->
    {ok, []};
exprs(Exprs) ->
    try
        Block = erl_syntax:block_expr(Exprs),
        Free = ann(free, annotate_bindings(Block, ordsets:new())),
        Annotated = annotate_bindings(Block, Free),
        {block, _, Out} = erl_syntax:revert(walk(Annotated)),
        {ok, Out}
    catch
        throw:{unsafe, Line, What} -> {error, {unsafe_form, Line, What}};
        %% A tree the analysis does not know is syntax the sandbox does not know.
        error:_ -> {error, {unsafe_form, 1, "this syntax is not available in the sandbox"}}
    end.

%% @doc `erl_syntax_lib:annotate_bindings/2', with named funs scoped.
%% `erl_syntax_lib' does not scope a named fun (`fun F(X) -> ... end'): its
%% name and what its clauses bind would count as variables of the
%% enclosing code. For the analysis it is a plain fun whose clauses take the
%% name as a last argument (bound in each clause, as it is); the walk puts
%% it back.
-spec annotate_bindings(erl_syntax:syntaxTree(), ordsets:ordset(atom())) -> erl_syntax:syntaxTree().
annotate_bindings(Tree, Env) ->
    erl_syntax_lib:annotate_bindings(erl_syntax_lib:map(fun scoped_name/1, Tree), Env).

scoped_name(N) ->
    case erl_syntax:type(N) of
        named_fun_expr ->
            Name = erl_syntax:named_fun_expr_name(N),
            Clauses = [erl_syntax:copy_attrs(C, erl_syntax:clause(erl_syntax:clause_patterns(C) ++ [Name],
                                                                    erl_syntax:clause_guard(C),
                                                                    erl_syntax:clause_body(C)))
                       || C <- erl_syntax:named_fun_expr_clauses(N)],
            erl_syntax:add_ann({seccomp_named, Name}, erl_syntax:copy_attrs(N, erl_syntax:fun_expr(Clauses)));
        _ ->
            N
    end.

named(N) ->
    case [Name || {seccomp_named, Name} <- erl_syntax:get_ann(N)] of
        [Name] -> Name;
        [] -> none
    end.

%%% The walk -------------------------------------------------------------------

walk(N) ->
    case erl_syntax:type(N) of
        case_expr -> case_expr(N);
        match_expr -> match_expr(N);
        receive_expr -> receive_expr(N);
        if_expr -> if_expr(N);
        fun_expr -> fun_expr(N, named(N));
        try_expr -> try_expr(N);
        T -> case lists:suffix("generator", atom_to_list(T)) of
                 true -> generator(N);
                 false -> generic(N)
             end
    end.

generic(N) ->
    case erl_syntax:subtrees(N) of
        [] -> N;
        Groups -> erl_syntax:copy_attrs(N, erl_syntax:update_tree(N, [[walk(C) || C <- G] || G <- Groups]))
    end.

case_expr(N) ->
    Clauses = erl_syntax:case_expr_clauses(N),
    {Outer, Subject} = clauses(Clauses, 'case'),
    Arg = bound_if(Subject, walk(erl_syntax:case_expr_argument(N))),
    checked(Outer, erl_syntax:copy_attrs(N, erl_syntax:case_expr(Arg, [clause(C) || C <- Clauses]))).

match_expr(N) ->
    Pattern = erl_syntax:match_expr_pattern(N),
    Clause = erl_syntax:copy_ann(N, erl_syntax:clause([Pattern], none, [])),
    {Outer, Subject} = clauses([Clause], 'case'),
    Body = bound_if(Subject, walk(erl_syntax:match_expr_body(N))),
    checked(Outer, erl_syntax:copy_attrs(N, erl_syntax:match_expr(Pattern, Body))).

%% A message is a copy: flat, and within the sender's bounds.
receive_expr(N) ->
    Clauses = erl_syntax:receive_expr_clauses(N),
    {Outer, _Subject} = clauses(Clauses, 'case'),
    Timeout = case erl_syntax:receive_expr_timeout(N) of
                  none -> none;
                  T -> walk(T)
              end,
    After = [walk(E) || E <- erl_syntax:receive_expr_action(N)],
    checked(Outer, erl_syntax:copy_attrs(N, erl_syntax:receive_expr([clause(C) || C <- Clauses], Timeout, After))).

if_expr(N) ->
    Clauses = erl_syntax:if_expr_clauses(N),
    %% No subject: every variable is from outside.
    {Outer, _} = clauses(Clauses, 'case'),
    checked(Outer, erl_syntax:copy_attrs(N, erl_syntax:if_expr([clause(C) || C <- Clauses]))).

try_expr(N) ->
    Clauses = erl_syntax:try_expr_clauses(N),
    Handlers = erl_syntax:try_expr_handlers(N),
    {Outer1, Subject} = clauses(Clauses, 'case'),
    {Outer2, Reason} = clauses(Handlers, 'case'),
    Reason andalso unsafe(N, "a catch clause may not compare two parts of the exception"),
    Body = case [walk(E) || E <- erl_syntax:try_expr_body(N)] of
               Es when Subject, Clauses =/= [] ->
                   {Init, [Last]} = lists:split(length(Es) - 1, Es),
                   Init ++ [bound(Last)];
               Es -> Es
           end,
    After = [walk(E) || E <- erl_syntax:try_expr_after(N)],
    Try = erl_syntax:try_expr(Body, [clause(C) || C <- Clauses], [clause(C) || C <- Handlers], After),
    checked(lists:usort(Outer1 ++ Outer2), erl_syntax:copy_attrs(N, Try)).

%% A fun's clauses bind their patterns afresh; what they compare with each
%% other is the arguments: the fun becomes one clause that bounds them and
%% selects the original clause with a `case'.
fun_expr(N, Name) ->
    Clauses = clauses_of(N, Name),
    {Outer, Args} = clauses(Clauses, 'fun'),
    Walked = [clause(C) || C <- Clauses],
    Fun = case Args of
              false -> make_fun(Name, Walked);
              true -> make_fun(Name, [selecting_clause(N, Walked)])
          end,
    checked(Outer, returns(erl_syntax:copy_attrs(N, Fun))).

%% A named fun's clauses without the name the analysis added.
clauses_of(N, none) ->
    erl_syntax:fun_expr_clauses(N);
clauses_of(N, _Name) ->
    [erl_syntax:copy_attrs(C, erl_syntax:clause(lists:droplast(erl_syntax:clause_patterns(C)),
                                                 erl_syntax:clause_guard(C), erl_syntax:clause_body(C)))
     || C <- erl_syntax:fun_expr_clauses(N)].

make_fun(none, Clauses) -> erl_syntax:fun_expr(Clauses);
make_fun(Name, Clauses) -> erl_syntax:named_fun_expr(Name, Clauses).

selecting_clause(N, [First | _] = Clauses) ->
    Arity = length(erl_syntax:clause_patterns(First)),
    Env = ann(env, N),
    [shadowing(C, Env) || C <- Clauses],
    Vars = [erl_syntax:variable(?ARG(I)) || I <- lists:seq(1, Arity)],
    Cases = [erl_syntax:clause([erl_syntax:tuple(erl_syntax:clause_patterns(C))], erl_syntax:clause_guard(C),
                               erl_syntax:clause_body(C)) || C <- Clauses],
    NoMatch = erl_syntax:clause([erl_syntax:underscore()], none,
                                [erl_syntax:application(erl_syntax:atom(erlang), erl_syntax:atom(error),
                                                        [erl_syntax:atom(function_clause)])]),
    erl_syntax:clause(Vars, none,
                      [erl_syntax:case_expr(bound(erl_syntax:tuple(Vars)), Cases ++ [NoMatch])]).

%% In a `case' a variable from outside would be compared, not bound.
shadowing(C, Env) ->
    Shadowed = ordsets:intersection(pattern_vars(erl_syntax:clause_patterns(C)), Env),
    Shadowed =:= [] orelse unsafe(C, "a fun head that compares its arguments may not shadow variables").

%% A generator's pattern compared with elements of its list: bound the list.
%% Every kind of generator (list, binary, map; lazy or strict) is a pattern
%% and a body.
generator(N) ->
    [[Pattern], [Body]] = erl_syntax:subtrees(N),
    Clause = erl_syntax:copy_ann(N, erl_syntax:clause([Pattern], none, [])),
    {Outer, Subject} = clauses([Clause], 'case'),
    erl_syntax:copy_attrs(N, erl_syntax:update_tree(N, [[Pattern], [bound_if(Subject orelse Outer =/= [], walk(Body))]])).

clause(C) ->
    erl_syntax:copy_attrs(C, erl_syntax:clause(erl_syntax:clause_patterns(C), erl_syntax:clause_guard(C),
                                               [walk(E) || E <- erl_syntax:clause_body(C)])).

%%% What clauses compare --------------------------------------------------------

%% The variables from outside that the clauses compare or hash, and whether
%% they compare parts of the matched value with each other. In a fun's
%% clauses the patterns bind afresh (only map keys and sizes use outer
%% variables).
clauses(Clauses, Kind) ->
    Results = [clause_compares(C, Kind) || C <- Clauses],
    {lists:usort(lists:append([O || {O, _} <- Results])), lists:any(fun({_, S}) -> S end, Results)}.

clause_compares(C, Kind) ->
    Env = ann(env, C),
    Patterns = erl_syntax:clause_patterns(C),
    Occurrences = lists:append([occurrences(P, bind) || P <- Patterns]),
    Bound = [V || {bind, V} <- Occurrences],
    Used = [V || {use, V} <- Occurrences],
    {OuterInPattern, Local} =
        case Kind of
            'fun' -> {Used, lists:usort(Bound)};
            'case' -> {[V || V <- Bound, ordsets:is_element(V, Env)] ++ Used,
                     lists:usort([V || V <- Bound, not ordsets:is_element(V, Env)])}
        end,
    Repeated = [V || V <- Local, length([x || X <- Bound, X =:= V]) > 1],
    {GuardOuter, GuardSubject} = guard(erl_syntax:clause_guard(C), Local),
    {OuterInPattern ++ GuardOuter, Repeated =/= [] orelse GuardSubject}.

%% Variable occurrences in a pattern: bound (or compared) where the pattern
%% matches, used where it must already be bound (map keys, binary sizes).
occurrences(P, Mode) ->
    case erl_syntax:type(P) of
        variable ->
            case erl_syntax:variable_name(P) of
                '_' -> [];
                V -> [{Mode, V}]
            end;
        map_field_exact ->
            occurrences(erl_syntax:map_field_exact_name(P), use)
                ++ occurrences(erl_syntax:map_field_exact_value(P), Mode);
        binary_field ->
            occurrences(erl_syntax:binary_field_body(P), Mode)
                ++ lists:append([occurrences(T, use) || T <- erl_syntax:binary_field_types(P)]);
        size_qualifier ->
            occurrences(erl_syntax:size_qualifier_body(P), Mode)
                ++ occurrences(erl_syntax:size_qualifier_argument(P), use);
        _ ->
            lists:append([occurrences(X, Mode) || G <- erl_syntax:subtrees(P), X <- G])
    end.

pattern_vars(Patterns) ->
    ordsets:from_list([V || P <- Patterns, {_, V} <- occurrences(P, bind)]).

%% The comparisons of a guard: outer variables to bound, and whether two
%% parts of the matched value are compared.
guard(none, _Local) ->
    {[], false};
guard(G, Local) ->
    Results = [comparison(N, Local) || N <- subnodes(G)],
    {lists:append([O || {O, _} <- Results]), lists:any(fun({_, S}) -> S end, Results)}.

subnodes(N) -> [N | [X || G <- erl_syntax:subtrees(N), C <- G, X <- subnodes(C)]].

comparison(N, Local) ->
    case compared_operands(N) of
        none -> {[], false};
        Operands ->
            case lists:any(fun scalar/1, Operands) of
                true -> {[], false};
                false ->
                    Vars = [lists:usort(vars(O)) || O <- Operands],
                    Outer = [V || Vs <- Vars, V <- Vs, not lists:member(V, Local)],
                    FromOutside = lists:any(fun(Vs) -> not lists:any(fun(V) -> lists:member(V, Local) end, Vs) end,
                                            Vars),
                    {Outer, not FromOutside}
            end
    end.

%% The operands a guard node compares or hashes, or `none'.
compared_operands(N) ->
    case erl_syntax:type(N) of
        infix_expr ->
            Op = erl_syntax:operator_name(erl_syntax:infix_expr_operator(N)),
            case lists:member(Op, ['==', '/=', '=:=', '=/=', '<', '>', '=<', '>=']) of
                true -> [erl_syntax:infix_expr_left(N), erl_syntax:infix_expr_right(N)];
                false -> none
            end;
        application ->
            case {call_name(N), erl_syntax:application_arguments(N)} of
                {F, [K, _M]} when F =:= is_map_key; F =:= map_get -> [K];
                {F, [X, Y]} when F =:= min; F =:= max -> [X, Y];
                _ -> none
            end;
        _ -> none
    end.

call_name(N) ->
    Op = erl_syntax:application_operator(N),
    case erl_syntax:type(Op) of
        atom -> erl_syntax:atom_value(Op);
        module_qualifier ->
            case {erl_syntax:type(erl_syntax:module_qualifier_argument(Op)),
                  erl_syntax:type(erl_syntax:module_qualifier_body(Op))} of
                {atom, atom} ->
                    case erl_syntax:atom_value(erl_syntax:module_qualifier_argument(Op)) of
                        erlang -> erl_syntax:atom_value(erl_syntax:module_qualifier_body(Op));
                        _ -> other
                    end;
                _ -> other
            end;
        _ -> other
    end.

%% An operand that is a literal or a number-valued built-in: the comparison
%% stops within it.
scalar(O) ->
    erl_syntax:is_literal(O) orelse
        case erl_syntax:type(O) of
            infix_expr ->
                lists:member(erl_syntax:operator_name(erl_syntax:infix_expr_operator(O)),
                             ['+', '-', '*', '/', 'div', 'rem', 'band', 'bor', 'bxor', 'bsl', 'bsr']);
            prefix_expr -> true;
            application ->
                lists:member(call_name(O), [length, size, byte_size, bit_size, tuple_size, map_size, abs,
                                            trunc, round, float, ceil, floor, node, self]);
            _ -> false
        end.

vars(N) ->
    case erl_syntax:type(N) of
        variable -> [erl_syntax:variable_name(N)];
        _ -> [V || G <- erl_syntax:subtrees(N), C <- G, V <- vars(C)]
    end.

%%% Building -------------------------------------------------------------------

%% `Expr' preceded by the bound on each outer variable.
checked([], Expr) -> Expr;
checked(Outer, Expr) -> erl_syntax:block_expr([bound(erl_syntax:variable(V)) || V <- Outer] ++ [Expr]).

bound_if(true, E) -> bound(E);
bound_if(false, E) -> E.

bound(E) -> marker(key, E).

%% What a fun returns may go to compiled code (`Enum.sort_by', `Map.new', a
%% server's reply), which compares, hashes or copies it: the fun becomes one
%% that bounds what it returns.
returns(Fun) -> marker(returns, Fun).

marker(Name, E) ->
    erl_syntax:application(erl_syntax:atom('$seccomp'), erl_syntax:atom(Name), [E]).

ann(Key, N) ->
    case lists:keyfind(Key, 1, erl_syntax:get_ann(N)) of
        {Key, Vs} -> Vs;
        false -> []
    end.

-spec unsafe(term(), string()) -> no_return().
unsafe(N, What) ->
    Line = case erl_syntax:get_pos(N) of
               L when is_integer(L), L > 0 -> L;
               Anno -> case erl_anno:line(Anno) of L when is_integer(L), L > 0 -> L; _ -> 1 end
           end,
    throw({unsafe, Line, What}).
