%% @doc Elixir in the sandbox: a check of the quoted form before macro
%% expansion (expansion runs macros, which are compiled code), then the
%% translation to Erlang abstract expressions the sandbox evaluates.
%%
%% Built on Elixir's own evaluation path (`elixir:eval_forms/3,4'), minus
%% its call to `erl_eval' so that the mediation pass and our handler come in
%% between. Those are private Elixir functions: `internals/0' names the ones
%% used on the running Elixir, and the version differences live only here.
-module(seccomp_elixir).

-export([check_quoted/1, to_erl/2, dump_bindings/2, internals/0]).

%% Kernel macros that define code, load modules or run other modules' macros.
-define(REFUSED, [use, require, import, defmodule, defprotocol, defimpl, defmacro, defmacrop,
                  def, defp, defdelegate, defstruct, defexception, defoverridable, defguard,
                  defguardp, '@', dbg]).
-define(IMPORTABLE, ['Elixir.Bitwise', 'Elixir.Integer', 'Elixir.Kernel']).

%% @doc Refuse forms whose expansion would run code outside the policy.
-spec check_quoted(term()) -> ok | {error, {seccomp_violation, mfa()}}.
check_quoted(Quoted) ->
    try walk([Quoted]) of
        ok -> ok
    catch
        throw:{refused, MFA} -> {error, {seccomp_violation, MFA}}
    end.

walk([]) -> ok;
walk([{'%', _, [{'__aliases__', _, Segs}, _]} = Node | Rest]) ->
    struct_allowed(Segs),
    walk(tuple_to_list(Node) ++ Rest);
walk([{Sigil, _, [{'<<>>', _, [Text]}, _Mods]} = Node | Rest]) when is_binary(Text),
                                                                  (Sigil =:= sigil_D orelse Sigil =:= sigil_T orelse
                                                                   Sigil =:= sigil_N orelse Sigil =:= sigil_U) ->
    calendar_allowed(Sigil, Text),
    walk(tuple_to_list(Node) ++ Rest);
walk([{Name, _Meta, Args} = Node | Rest]) when is_atom(Name), is_list(Args) ->
    refused(Name, Args),
    walk(tuple_to_list(Node) ++ Rest);
walk([T | Rest]) when is_tuple(T) -> walk(tuple_to_list(T) ++ Rest);
walk([L | Rest]) when is_list(L) -> walk(improper_to_list(L) ++ Rest);
walk([_ | Rest]) -> walk(Rest).

improper_to_list([H | T]) -> [H | improper_to_list(T)];
improper_to_list([]) -> [];
improper_to_list(Tail) -> [Tail].

refused(Name, Args) when Name =:= import; Name =:= require ->
    case Args of
        [{'__aliases__', _, Segs} | _] ->
            lists:member(alias_module(Segs), ?IMPORTABLE) orelse throw({refused, kernel_mfa(Name, Args)});
        _ ->
            throw({refused, kernel_mfa(Name, Args)})
    end;
refused(Name, Args) ->
    lists:member(Name, ?REFUSED) andalso throw({refused, kernel_mfa(Name, Args)}).

kernel_mfa(Name, Args) -> {'Elixir.Kernel', Name, length(Args)}.

%% A struct literal makes the expander call `Module.__struct__/0': only for
%% modules whose structs the policy allows.
struct_allowed(Segs) ->
    M = alias_module(Segs),
    M =/= undefined andalso seccomp_nif:check(M, '__struct__', 0) =:= allow
        orelse throw({refused, {M, '__struct__', 0}}).

%% A date or time sigil names its calendar as its last word when that word
%% starts with a capital (as Kernel reads it): expansion makes the module's
%% atom and calls its parser. Only an existing module whose parser the
%% policy allows.
calendar_allowed(Sigil, Text) ->
    case lists:last(binary:split(Text, <<" ">>, [global])) of
        <<C, _/binary>> = Word when C >= $A, C =< $Z ->
            F = maps:get(Sigil, #{sigil_D => parse_date, sigil_T => parse_time,
                                  sigil_N => parse_naive_datetime, sigil_U => parse_utc_datetime}),
            M = try binary_to_existing_atom(<<"Elixir.", Word/binary>>) catch error:badarg -> undefined end,
            M =/= undefined andalso seccomp_nif:check(M, F, 1) =:= allow
                orelse throw({refused, {M, F, 1}});
        _ ->
            ok
    end.

alias_module(Segs) ->
    case lists:all(fun is_atom/1, Segs) of
        true ->
            Name = iolist_to_binary(["Elixir" | [[$., atom_to_binary(S)] || S <- Segs]]),
            try binary_to_existing_atom(Name) catch error:badarg -> undefined end;
        false ->
            undefined
    end.

%% @doc Expand and translate a quoted form with the given bindings (a
%% keyword list). Returns the expressions, the Erlang bindings, the state
%% `dump_bindings/2' needs, and the Erlang name of each binding. The
%% compiler's diagnostics about the user's code come back in the error and
%% never reach the host's standard error.
-spec to_erl(term(), [{atom(), term()}]) ->
          {ok, [erl_parse:abstract_expr()], term(), {term(), term()}, [{atom(), atom()}]}
          | {error, {compile_error, pos_integer(), binary()}}.
to_erl(Quoted, Bindings) ->
    case with_diagnostics(fun() -> expand_translate(Quoted, Bindings) end) of
        {{ok, _, _, _, _} = Ok, _Diagnostics} -> Ok;
        {{raised, Exception}, Diagnostics} -> {error, compile_error(Exception, Diagnostics)}
    end.

expand_translate(Quoted, Bindings) ->
    try
        Env = elixir:env_for_eval([{file, <<"nofile">>}]),
        {ExVars, ErlVars, ErlBinding} = load_binding(Bindings),
        E = elixir_env:with_vars(Env, ExVars),
        S = elixir_erl_var:from_env(E, ErlVars),
        {Expanded, ExS, _E1} = elixir_expand:expand(Quoted, elixir_env:env_to_ex(E), E),
        {Erl, ErlS} = elixir_erl_pass:translate(Expanded, erl_anno:new(1), S),
        Exprs = case Erl of
                    {block, _, Block} -> Block;
                    _ -> [Erl]
                end,
        Names = [{Name, maps:get(Version, ErlVars)} || {{Name, nil}, Version} <- maps:to_list(ExVars)],
        {ok, Exprs, ErlBinding, {ExS, ErlS}, Names}
    catch
        error:#{'__struct__' := Struct} = Exception:_ when Struct =:= 'Elixir.CompileError';
                                                           Struct =:= 'Elixir.SyntaxError';
                                                           Struct =:= 'Elixir.TokenMissingError';
                                                           Struct =:= 'Elixir.ArgumentError';
                                                           Struct =:= 'Elixir.KeyError';
                                                           Struct =:= 'Elixir.UndefinedFunctionError' ->
            {raised, Exception}
    end.

%% Elixir 1.15+ reports errors (an undefined variable, ...) as diagnostics
%% and then raises "errors have been logged": the first error diagnostic says
%% where, all of them say what.
compile_error(Exception, Diagnostics) ->
    case [D || #{severity := error} = D <- Diagnostics] of
        [] ->
            {compile_error, line(maps:get(line, Exception, 1)), 'Elixir.Exception':message(Exception)};
        [#{position := Position} | _] = Errors ->
            Text = lists:join(<<"\n">>, [Message || #{message := Message} <- Errors]),
            {compile_error, line(Position), iolist_to_binary(Text)}
    end.

line({Line, _Column}) -> line(Line);
line(Line) when is_integer(Line), Line > 0 -> Line;
line(_) -> 1.

%% @doc Erlang variables (a map) back to an Elixir keyword list.
-spec dump_bindings(#{atom() => term()}, {term(), term()}) -> [{atom(), term()}].
dump_bindings(Vars, {ExS, ErlS}) ->
    lists:sort(dump_binding(Vars, ExS, ErlS)).

%% Elixir's private functions used here, for the running Elixir.
%% Everything version-dependent about them is decided in this section.

%% @doc The private Elixir functions this module calls on the running Elixir
%% (a test checks that each is exported, so a new Elixir that changes them
%% fails loudly instead of every evaluation failing with `undef').
-spec internals() -> [mfa()].
internals() ->
    Binding = case binding_api() of
                  pruning -> [{elixir_erl_var, load_binding, 2}, {elixir_erl_var, dump_binding, 4}];
                  plain -> [{elixir_erl_var, load_binding, 1}, {elixir_erl_var, dump_binding, 3}]
              end,
    [{elixir, env_for_eval, 1}, {elixir_env, with_vars, 2}, {elixir_env, env_to_ex, 1},
     {elixir_erl_var, from_env, 2}, {elixir_expand, expand, 3}, {elixir_erl_pass, translate, 3}
     | Binding] ++ diagnostics_api().

%% Elixir 1.15 added a "prune" argument to load_binding and dump_binding
%% (and swapped dump_binding's states); 1.14 has the plain ones.
binding_api() ->
    {module, elixir_erl_var} = code:ensure_loaded(elixir_erl_var),
    case erlang:function_exported(elixir_erl_var, load_binding, 2) of
        true -> pruning;
        false -> plain
    end.

load_binding(Bindings) ->
    case binding_api() of
        pruning -> elixir_erl_var:load_binding(Bindings, false);
        plain -> elixir_erl_var:load_binding(Bindings)
    end.

dump_binding(Vars, ExS, ErlS) ->
    case binding_api() of
        pruning ->
            {Binding, _ExVars} = elixir_erl_var:dump_binding(Vars, ErlS, ExS, -1),
            Binding;
        plain ->
            elixir_erl_var:dump_binding(Vars, ExS, ErlS)
    end.

%% `Code.with_diagnostics/2' (Elixir 1.15+) collects what the compiler would
%% print. Elixir 1.14 prints its warnings itself; there is no hook.
diagnostics_api() ->
    {module, 'Elixir.Code'} = code:ensure_loaded('Elixir.Code'),
    case erlang:function_exported('Elixir.Code', with_diagnostics, 2) of
        true -> [{'Elixir.Code', with_diagnostics, 2}];
        false -> []
    end.

with_diagnostics(Fun) ->
    case diagnostics_api() of
        [_] -> 'Elixir.Code':with_diagnostics([{log, false}], Fun);
        [] -> {Fun(), []}
    end.
