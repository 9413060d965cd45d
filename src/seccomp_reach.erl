%% @doc Sets of exported functions derived with `xref' from the installed
%% Elixir, stdlib and kernel: every function that can reach one of a group
%% of built-ins, directly or through other functions.
%%
%% <ul>
%% <li>`atoms': functions that can create atoms from data (refused, but
%%     for those whose atoms the handler counts itself);</li>
%% <li>`superlinear': functions whose output or working memory can grow
%%     with a product of their arguments' sizes (replacement, splitting and
%%     matching with compiled patterns, regular expressions); their
%%     arguments are bounded by `seccomp_cost'.</li>
%% <li>`integer_text': functions that can turn text into an integer, in
%%     time quadratic in the number of digits and without yielding; their
%%     text arguments are bounded by `seccomp_cost'.</li>
%% </ul>
%%
%% The derivation itself ({@link derive_callers/1}, run once at start by
%% {@link start/1}, waited for by {@link when_known/2}) serves
%% `seccomp_flatteners' too.
%%
%% The sets take seconds to derive: {@link start/1} does it in the
%% background, and until they are known every function counts as a member
%% (refused or bounded: slower or stricter, never unsafe).
-module(seccomp_reach).

-export([member/4, status/4, start/1, ensure/0, derive/0, sinks/1, groups/0, when_known/2, derive_callers/1,
         derive_set/2, ensure_set/3]).

-export_type([group/0]).

-type group() :: atoms | superlinear | integer_text.

-define(KEY, {?MODULE, sets}).
-define(APPS, [elixir, stdlib, kernel]).
%% Protocol dispatch reaches every implementation; the implementations stay
%% in the graph, reached from wherever they are called by name.
-define(CUT, ['Elixir.Enumerable', 'Elixir.Collectable', 'Elixir.Inspect',
              'Elixir.String.Chars', 'Elixir.List.Chars']).

-spec groups() -> [group()].
groups() -> [atoms, superlinear, integer_text].

%% @doc The built-ins of a group.
-spec sinks(group()) -> [mfa()].
sinks(atoms) ->
    [{erlang, list_to_atom, 1}, {erlang, binary_to_atom, 1}, {erlang, binary_to_atom, 2},
     {erlang, binary_to_term, 1}, {erlang, binary_to_term, 2}];
sinks(integer_text) ->
    [{erlang, binary_to_integer, 1}, {erlang, binary_to_integer, 2},
     {erlang, list_to_integer, 1}, {erlang, list_to_integer, 2}];
sinks(superlinear) ->
    [{binary, F, A} || {F, A} <- [{compile_pattern, 1}, {match, 2}, {match, 3}, {matches, 2},
                                   {matches, 3}, {split, 2}, {split, 3}, {replace, 3},
                                   {replace, 4}]]
        ++ [{re, F, A} || {F, A} <- [{compile, 1}, {compile, 2}, {run, 2}, {run, 3},
                                      {replace, 3}, {replace, 4}, {split, 2}, {split, 3}]].

%% @doc Whether `M:F/A' is in (or reaches) `Group'; while the sets are not
%% known, or cannot be derived, every function is.
-spec member(group(), module(), atom(), arity()) -> boolean().
member(Group, M, F, A) -> status(Group, M, F, A) =/= false.

%% @doc Whether `M:F/A' is in `Group', or `unknown' while the sets are
%% being derived.
-spec status(group(), module(), atom(), arity()) -> boolean() | unknown.
status(Group, M, F, A) ->
    case persistent_term:get(?KEY, undefined) of
        #{Group := Set} -> is_map_key({M, F, A}, Set);
        undefined -> unknown;
        all -> true
    end.

%% @doc Derive the sets in the background, in one `xref' session with
%% `Others': sets of other modules, each stored under its key (see
%% {@link when_known/2}).
-spec start([{term(), [module()], [mfa()]}]) -> ok.
start(Others) ->
    _ = spawn(fun() -> register(?MODULE, self()), store(Others) end),
    ok.

store(Others) ->
    Specs = [{Cut, Sinks} || {_Key, Cut, Sinks} <- Others] ++ [{cut(G), sinks(G)} || G <- groups()],
    Keys = [Key || {Key, _, _} <- Others] ++ [{?MODULE, G} || G <- groups()],
    case derive_callers(Specs) of
        {ok, Lists} ->
            Sets = [maps:from_keys(L, true) || L <- Lists],
            {OthersSets, Groups} = lists:split(length(Others), lists:zip(Keys, Sets)),
            [persistent_term:put(Key, Set) || {Key, Set} <- OthersSets],
            persistent_term:put(?KEY, maps:from_list([{G, Set} || {{?MODULE, G}, Set} <- Groups]));
        error ->
            %% Every call counts as a member of every set.
            [persistent_term:put(Key, all) || {Key, _, _} <- Others],
            persistent_term:put(?KEY, all)
    end.

%% @doc Wait until the sets are known, deriving them here if no one else is.
-spec ensure() -> ok.
ensure() -> when_known(?KEY, fun sets/0).

sets() ->
    case derive() of
        {ok, Sets} -> maps:map(fun(_, L) -> maps:from_keys(L, true) end, Sets);
        error -> all
    end.

%% @doc Each group's built-ins and the exported functions that reach them.
-spec derive() -> {ok, #{group() => [mfa()]}} | error.
derive() ->
    case derive_callers([{cut(G), sinks(G)} || G <- groups()]) of
        {ok, Sets} -> {ok, maps:from_list(lists:zip(groups(), Sets))};
        error -> error
    end.

%% @doc Wait until `Key' is stored by the background derivation, or derive
%% it here (`Derive()') if none is running.
-spec when_known(term(), fun(() -> term())) -> ok.
when_known(Key, Derive) ->
    case persistent_term:get(Key, undefined) of
        undefined ->
            case whereis(?MODULE) of
                undefined ->
                    %% A second store (racing a background one) writes the same value.
                    persistent_term:put(Key, Derive());
                Pid ->
                    Ref = monitor(process, Pid),
                    receive {'DOWN', Ref, process, Pid, _} -> when_known(Key, Derive) end
            end;
        _ ->
            ok
    end.

%% @doc One set of another module (see {@link start/1}): the sinks and the
%% exported functions that reach one, not following calls into `Cut'.
-spec derive_set([module()], [mfa()]) -> {ok, [mfa()]} | error.
derive_set(Cut, Sinks) ->
    case derive_callers([{Cut, Sinks}]) of
        {ok, [Callers]} -> {ok, Callers};
        error -> error
    end.

%% @doc Wait until the set stored under `Key' is known, deriving it here
%% (as {@link derive_set/2}, `all' where it cannot be) if no one else is.
-spec ensure_set(term(), [module()], [mfa()]) -> ok.
ensure_set(Key, Cut, Sinks) ->
    when_known(Key, fun() ->
                            case derive_set(Cut, Sinks) of
                                {ok, Set} -> maps:from_keys(Set, true);
                                error -> all
                            end
                    end).

%% @doc For each `{CutModules, Sinks}', the sinks and the exported functions
%% of Elixir, stdlib and kernel that reach one of them, not following calls
%% into `CutModules'; `error' where the code cannot be analysed.
-spec derive_callers([{[module()], [mfa()]}]) -> {ok, [[mfa()]]} | error.
derive_callers(Specs) ->
    {ok, X} = xref:start([{xref_mode, functions}]),
    try
        %% `builtins': the sinks are mostly BIFs, whose calls xref skips by default.
        ok = xref:set_default(X, [{warnings, false}, {verbose, false}, {builtins, true}]),
        _ = [{ok, _} = xref:add_directory(X, filename:join(code:lib_dir(App), "ebin")) || App <- ?APPS],
        {ok, Called} = xref:q(X, "range E"),
        {ok, [callers(X, Called, Cut, Sinks) || {Cut, Sinks} <- Specs]}
    catch
        _:_ -> error
    after
        xref:stop(X)
    end.

%% Modules whose calls are not followed. For atoms, also the error paths
%% (raising and formatting exceptions, the error handler, code loading),
%% which make atoms of module and function names the code already holds,
%% and `erl_scan', which printing calls only to see whether an atom it was
%% given needs quotes. Their own functions stay members, reached from
%% wherever they are called by name.
cut(atoms) ->
    ?CUT ++ ['Elixir.Exception', 'Elixir.Kernel.Utils', 'Elixir.Inspect.Algebra', 'Elixir.Code',
             'Elixir.Macro', 'Elixir.Module', 'Elixir.Protocol', 'Elixir.IO', erl_error,
             error_handler, code, code_server, proc_lib, error_logger, logger, io, erl_scan];
cut(_Group) ->
    ?CUT.

callers(X, Called, CutModules, Sinks) ->
    Cut = lists:join(", ", [io_lib:format("~p", [M]) || M <- CutModules]),
    %% A query naming a function no code calls is an error: name the called ones.
    Names = lists:join(", ", [io_lib:format("~p:~p/~p", [M, F, A])
                              || {M, F, A} <- Sinks, lists:member({M, F, A}, Called)]),
    Query = lists:flatten(["domain ((closure (E - (E | (Mod) [", Cut, "]))) || [", Names, "]) * X"]),
    {ok, Callers} = xref:q(X, Query),
    lists:usort(Sinks ++ Callers).
