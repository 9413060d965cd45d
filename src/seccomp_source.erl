%% @doc Turning user source into Erlang abstract expressions, without letting
%% the source fill the atom table: the atoms a text would create are counted
%% (against `max_atoms' and what all sandboxes may make) before any of them
%% is created.
-module(seccomp_source).

-export([parse/3, new_atoms_erlang/1, within_size/2]).

-type language() :: erlang | elixir.
-type error() :: atom_limit | {syntax_error, pos_integer(), binary()}
               | {compile_error, pos_integer(), binary()}.
-export_type([language/0, error/0]).

%% @doc Parse `Code' (a string, a binary, or for Elixir a quoted form).
%% Returns Erlang-source expressions, or an Elixir quoted form.
-spec parse(language(), iodata() | term(), non_neg_integer()) ->
          {ok, {erlang, [erl_parse:abstract_expr()]} | {elixir, term()}, non_neg_integer()}
          | {error, error()}.
parse(erlang, Code, MaxAtoms) ->
    case text(Code, fun unicode:characters_to_list/1) of
        {ok, Text} ->
            case new_atoms_erlang(Text) of
                N when N > MaxAtoms -> {error, atom_limit};
                N -> reserved(N, fun() -> erlang_exprs(Text, N) end)
            end;
        error ->
            not_text()
    end;
parse(elixir, Code, MaxAtoms) when is_binary(Code); is_list(Code) ->
    case text(Code, fun unicode:characters_to_binary/1) of
        {ok, Text} -> elixir_quoted(Text, MaxAtoms);
        error -> not_text()
    end;
parse(elixir, Quoted, _MaxAtoms) ->
    {ok, {elixir, Quoted}, 0}.

%% @doc Whether source text (iodata) or a quoted form (its external format)
%% is at most `Max' bytes. The walk stops at the limit: the code is the
%% caller's data, but may still share subterms.
-spec within_size(iodata() | term(), non_neg_integer()) -> boolean().
within_size(Code, Max) ->
    %% A charlist costs two per character in the bounded walk (cell and byte).
    try seccomp_size:within(Code, 2 * Max + 1, iodata) andalso iolist_size(Code) =< Max
    catch error:badarg ->
            seccomp_size:within(Code, 8 * Max, term) andalso erlang:external_size(Code) =< Max
    end.

%% Parse once the `N' atoms the text would create (here, or when it is
%% expanded) are taken from what all sandboxes may make.
reserved(N, Parse) ->
    case seccomp_atom_reserve:take(N) of
        ok -> Parse();
        atom_limit -> {error, atom_limit}
    end.

%% The code converted to the form the parser wants (characters or UTF-8),
%% if it is Unicode text at all.
text(Code, Convert) ->
    try Convert(Code) of
        Text when is_list(Text); is_binary(Text) -> {ok, Text};
        _ -> error
    catch
        error:_ -> error
    end.

not_text() -> {error, {syntax_error, 1, <<"the code is not Unicode text">>}}.

erlang_exprs(Text, NewAtoms) ->
    case erl_scan:string(Text, 1) of
        {ok, Tokens, End} ->
            Terminated = case lists:reverse(Tokens) of
                             [{dot, _} | _] -> Tokens;
                             _ -> Tokens ++ [{dot, End}]
                         end,
            case erl_parse:parse_exprs(Terminated) of
                {ok, Exprs} -> {ok, {erlang, Exprs}, NewAtoms};
                {error, {Loc, Mod, Desc}} -> {error, {syntax_error, loc_line(Loc), message(Mod, Desc)}}
            end;
        {error, {Loc, Mod, Desc}, _} ->
            {error, {syntax_error, loc_line(Loc), message(Mod, Desc)}}
    end.

loc_line({L, _}) -> L;
loc_line(L) when is_integer(L) -> L.

message(Mod, Desc) -> unicode:characters_to_binary(Mod:format_error(Desc)).

%%% Counting the atoms Erlang source would create ------------------------------

%% @doc How many atoms that do not exist yet scanning `Text' would create
%% (an upper bound: every unquoted word and quoted atom, variables included).
-spec new_atoms_erlang(string()) -> non_neg_integer().
new_atoms_erlang(Text) -> count_new(words(Text, [])).

count_new(Words) ->
    length([W || W <- lists:usort(Words), not exists(W)]).

exists(W) ->
    try list_to_existing_atom(W) of _ -> true
    catch error:badarg -> false
    end.

words([], Acc) -> Acc;
words([$% | T], Acc) -> words(skip_line(T), Acc);
words([$" | T], Acc) -> words(skip_quoted($", T), Acc);
words([$$, $\\, _ | T], Acc) -> words(T, Acc);
words([$$, _ | T], Acc) -> words(T, Acc);
words([$' | T], Acc) ->
    {Atom, Rest} = quoted($', T, []),
    words(Rest, [Atom | Acc]);
words([C | T], Acc) when C >= $0, C =< $9 ->
    {_, Rest} = lists:splitwith(fun word_char/1, T),
    words(Rest, Acc);
words([C | _] = L, Acc) when C >= $a, C =< $z; C >= $A, C =< $Z; C =:= $_; C >= 16#C0 ->
    {Word, Rest} = lists:splitwith(fun word_char/1, L),
    words(Rest, [Word | Acc]);
words([_ | T], Acc) -> words(T, Acc).

word_char(C) ->
    (C >= $a andalso C =< $z) orelse (C >= $A andalso C =< $Z) orelse (C >= $0 andalso C =< $9)
        orelse C =:= $_ orelse C =:= $@ orelse C >= 16#C0.

skip_line([$\n | T]) -> T;
skip_line([_ | T]) -> skip_line(T);
skip_line([]) -> [].

skip_quoted(Q, L) -> element(2, quoted(Q, L, [])).

quoted(_Q, [], Acc) -> {lists:reverse(Acc), []};
quoted(Q, [$\\, C | T], Acc) -> quoted(Q, T, [C, $\\ | Acc]);
quoted(Q, [Q | T], Acc) -> {lists:reverse(Acc), T};
quoted(Q, [C | T], Acc) -> quoted(Q, T, [C | Acc]).

%%% Elixir ------------------------------------------------------------------------

%% The tokenizer's warnings about the user's code (deprecated syntax) are not
%% the host's business: they would go to its standard error.
-define(PARSE_OPTS, [{file, <<"nofile">>}, {emit_warnings, false}]).

%% Parse once with an encoder that creates no atom and records the unknown
%% ones; only when they fit the budget is the text parsed for real.
elixir_quoted(Text, MaxAtoms) ->
    Key = {?MODULE, new_atoms},
    put(Key, #{}),
    Encoder = fun(Name, _Meta) ->
                  try {ok, binary_to_existing_atom(Name, utf8)}
                  catch error:badarg ->
                          put(Key, maps:put(Name, true, get(Key))),
                          {ok, {'$new_atom', Name}}
                  end
              end,
    Probe = 'Elixir.Code':string_to_quoted(Text, [{static_atoms_encoder, Encoder} | ?PARSE_OPTS]),
    New = map_size(erase(Key)),
    case Probe of
        {ok, Quoted} ->
            Total = New + new_expansion_atoms(Quoted),
            if
                Total > MaxAtoms -> {error, atom_limit};
                New =:= 0 -> reserved(Total, fun() -> {ok, {elixir, Quoted}, Total} end);
                true -> reserved(Total, fun() -> reparse(Text, Total) end)
            end;
        {error, Error} ->
            {error, elixir_syntax_error(Error)}
    end.

reparse(Text, Total) ->
    case 'Elixir.Code':string_to_quoted(Text, ?PARSE_OPTS) of
        {ok, Quoted} -> {ok, {elixir, Quoted}, Total};
        {error, Error} -> {error, elixir_syntax_error(Error)}
    end.

%% Atoms that macro expansion creates from the text, before any code runs:
%% `Foo.Bar' becomes 'Elixir.Foo.Bar', and a word list with the `a'
%% modifier (`~w(...)a', `~W(...)a') becomes one atom per word. (Word lists
%% with interpolation are split at run time, where the handler counts each
%% atom.) And the translation to Erlang names each binding of a variable
%% `_name@N' (N counting the variable's bindings): at most one per place a
%% pattern binds the name (`=', `<-', a clause's head).
new_expansion_atoms(Quoted) ->
    count_new(lists:usort(expansion_atoms([Quoted], []) ++ version_atoms(Quoted))).

version_atoms(Quoted) ->
    Counts = bindings([Quoted], #{}),
    [lists:flatten(["_", Name, "@", integer_to_list(N)])
     || {Name, Count} <- maps:to_list(Counts), N <- lists:seq(1, Count)].

%% How many places bind each variable name.
bindings([], Acc) ->
    Acc;
bindings([{Op, _, [Pattern, Right]} | Rest], Acc) when Op =:= '='; Op =:= '<-' ->
    bindings([Right | Rest], pattern_vars([Pattern], Acc));
bindings([{'->', _, [Heads, Body]} | Rest], Acc) when is_list(Heads) ->
    bindings([Body | Rest], pattern_vars(Heads, Acc));
bindings([T | Rest], Acc) when is_tuple(T) -> bindings(tuple_to_list(T) ++ Rest, Acc);
bindings([L | Rest], Acc) when is_list(L) -> bindings(L ++ Rest, Acc);
bindings([_ | Rest], Acc) -> bindings(Rest, Acc).

%% The variables a pattern binds (not a pinned one, not `_'); a guard's
%% are uses. Patterns may nest matches.
pattern_vars([], Acc) ->
    Acc;
pattern_vars([{'^', _, _} | Rest], Acc) ->
    pattern_vars(Rest, Acc);
pattern_vars([{'when', _, Args} | Rest], Acc) when is_list(Args), Args =/= [] ->
    pattern_vars(lists:droplast(Args) ++ Rest, Acc);
pattern_vars([{Name, Meta, Context} | Rest], Acc) when is_list(Meta), is_atom(Context), Name =/= '_' ->
    case seg_name(Name) of
        dynamic -> pattern_vars(Rest, Acc);
        Text -> pattern_vars(Rest, maps:update_with(Text, fun(C) -> C + 1 end, 1, Acc))
    end;
pattern_vars([T | Rest], Acc) when is_tuple(T) -> pattern_vars(tuple_to_list(T) ++ Rest, Acc);
pattern_vars([L | Rest], Acc) when is_list(L) -> pattern_vars(L ++ Rest, Acc);
pattern_vars([_ | Rest], Acc) -> pattern_vars(Rest, Acc).

expansion_atoms([], Acc) -> Acc;
expansion_atoms([{'__aliases__', _, Segs} | Rest], Acc) when is_list(Segs) ->
    Names = [seg_name(S) || S <- Segs],
    Acc1 = case lists:all(fun is_list/1, Names) of
               true -> [lists:flatten(["Elixir." | lists:join(".", Names)]) | Acc];
               false -> Acc
           end,
    expansion_atoms(Rest, Acc1);
expansion_atoms([{Sigil, _, [{'<<>>', _, [Text]}, Mods]} = Node | Rest], Acc)
  when (Sigil =:= sigil_w orelse Sigil =:= sigil_W), is_binary(Text), is_list(Mods) ->
    Words = case lists:member($a, Mods) of
                true -> [unicode:characters_to_list(W) || W <- sigil_words(Sigil, Text)];
                false -> []
            end,
    expansion_atoms(tuple_to_list(Node) ++ Rest, Words ++ Acc);
expansion_atoms([T | Rest], Acc) when is_tuple(T) -> expansion_atoms(tuple_to_list(T) ++ Rest, Acc);
expansion_atoms([L | Rest], Acc) when is_list(L) -> expansion_atoms(L ++ Rest, Acc);
expansion_atoms([_ | Rest], Acc) -> expansion_atoms(Rest, Acc).

%% The words of a sigil as the macro splits them (`~w' unescapes first).
sigil_words(sigil_w, Text) -> 'Elixir.String':split('Elixir.Macro':unescape_string(Text));
sigil_words(sigil_W, Text) -> 'Elixir.String':split(Text).

seg_name(A) when is_atom(A) -> atom_to_list(A);
seg_name({'$new_atom', B}) -> unicode:characters_to_list(B);
seg_name(_) -> dynamic.

elixir_syntax_error({Meta, Message, Token}) ->
    Line = case Meta of
               L when is_integer(L) -> L;
               _ when is_list(Meta) -> proplists:get_value(line, Meta, 1)
           end,
    {syntax_error, Line, iolist_to_binary([message_part(Message), message_part(Token)])}.

message_part({Prefix, Suffix}) -> [message_part(Prefix), message_part(Suffix)];
message_part(B) when is_binary(B) -> B;
message_part(L) when is_list(L) -> unicode:characters_to_binary(L);
message_part(Other) -> io_lib:format("~p", [Other]).
