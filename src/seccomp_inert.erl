%% @doc What leaves a sandbox in an error must be inert: host code that
%% formats it (our own error texts, `Exception.normalize/3', the logger and
%% its Elixir translator) interprets parts of it. A stack frame's
%% `error_info' names a function the formatter calls with the sandbox's data,
%% a frame's argument list is printed, an exception struct's module is called
%% for its message and a struct's module picks the `Inspect' implementation.
%% Terms are walked here only after `seccomp_sandbox_ctx:copyable/2' bounded
%% their flattened size.
-module(seccomp_inert).

-export([stack/1, term/1, describe/4, summary/2]).

%% Frames kept of a stack trace: as many as the VM records by default.
-define(MAX_FRAMES, 64).
%% Characters of a frame's file name.
-define(MAX_FILE, 1024).

%% @doc A stack trace reduced to `{M, F, Arity, [{file, _}, {line, _}]}'
%% frames: no arguments, no `error_info', nothing that is not a frame.
-spec stack(term()) -> [{module(), atom(), arity(), [{file, string()} | {line, pos_integer()}]}].
stack(Stack) -> frames(Stack, ?MAX_FRAMES).

frames([{M, F, A, Loc} | T], N) when N > 0, is_atom(M), is_atom(F) ->
    case arity(A) of
        none -> frames(T, N);
        Arity -> [{M, F, Arity, location(Loc)} | frames(T, N - 1)]
    end;
frames([_ | T], N) when N > 0 -> frames(T, N);
frames(_, _) -> [].

arity(A) when is_integer(A), A >= 0, A =< 255 -> A;
arity(As) when is_list(As) -> proper_length(As, 0);
arity(_) -> none.

proper_length([], N) when N =< 255 -> N;
proper_length([_ | T], N) when N < 255 -> proper_length(T, N + 1);
proper_length(_, _) -> none.

location(Loc) when is_list(Loc) ->
    [{K, V} || {K, V} <- Loc, location_item(K, V)];
location(_) -> [].

location_item(line, V) -> is_integer(V) andalso V > 0;
location_item(file, V) -> is_list(V) andalso io_lib:printable_unicode_list(V) andalso length(V) =< ?MAX_FILE;
location_item(_, _) -> false.

%% @doc `Term' with every stack trace in it reduced by {@link stack/1} and
%% every struct made a plain map (the `__struct__' key dropped), so that
%% formatting it runs only the formatter's own code.
-spec term(term()) -> term().
term(T) when is_list(T) ->
    case is_stack(T) of
        true -> stack(T);
        false -> list(T)
    end;
term(T) when is_tuple(T) -> list_to_tuple([term(E) || E <- tuple_to_list(T)]);
term(T) when is_map(T) -> maps:from_list([{term(K), term(V)} || {K, V} <- maps:to_list(maps:remove('__struct__', T))]);
term(T) -> T.

list([H | T]) -> [term(H) | list(T)];
list([]) -> [];
list(Tail) -> term(Tail).

is_stack([{M, F, _, Loc} | _]) when is_atom(M), is_atom(F), is_list(Loc) -> true;
is_stack(_) -> false.

%% @doc The reason (as Elixir users expect it: an exception struct) and the
%% banner text of an exception from sandboxed code, computed from inert
%% data. Never raises.
-spec describe(elixir | erlang, error | exit | throw, term(), list()) -> {term(), binary()}.
describe(Lang, Class, Reason, Stack) ->
    Inert = term(Reason),
    Normal = try normalise(Lang, Class, Reason, stack(Stack), Inert)
             catch _:_ -> Inert
             end,
    Text = try banner(Lang, Class, Normal)
           catch _:_ -> summary(Class, Normal)
           end,
    {Normal, Text}.

%% Elixir's own exception structs stay structs (their fields made inert);
%% anything else that claims to be an exception is a plain map.
normalise(elixir, error, #{'__struct__' := M, '__exception__' := true}, _Stack, Inert) ->
    case elixir_exception(M) of
        true -> Inert#{'__struct__' => M};
        false -> 'Elixir.ErlangError':exception([{original, Inert}])
    end;
normalise(elixir, error, _Reason, Stack, Inert) ->
    'Elixir.Exception':normalize(error, Inert, Stack);
normalise(_Lang, _Class, _Reason, _Stack, Inert) ->
    Inert.

banner(elixir, Class, Normal) ->
    unicode:characters_to_binary('Elixir.Exception':format_banner(Class, Normal, []));
banner(erlang, Class, Normal) ->
    unicode:characters_to_binary(erl_error:format_exception(Class, Normal, [])).

%% @doc A short text for a reason that could not be formatted.
-spec summary(error | exit | throw, term()) -> binary().
summary(Class, Reason) ->
    unicode:characters_to_binary(io_lib:format("** (~p) ~P", [Class, term(Reason), 20])).

%% Exception modules of the `elixir' application: their `message/1' reads
%% only the struct's fields. The application's module list is read once.
elixir_exception(M) when is_atom(M) ->
    Key = {?MODULE, elixir_modules},
    Mods = case persistent_term:get(Key, undefined) of
               undefined ->
                   List = case application:get_key(elixir, modules) of
                              {ok, Ms} -> Ms;
                              undefined -> []
                          end,
                   Set = maps:from_list([{Mod, true} || Mod <- List]),
                   persistent_term:put(Key, Set),
                   Set;
               Set ->
                   Set
           end,
    is_map_key(M, Mods) andalso code:ensure_loaded(M) =:= {module, M}
        andalso erlang:function_exported(M, exception, 1)
        andalso erlang:function_exported(M, message, 1);
elixir_exception(_) ->
    false.
