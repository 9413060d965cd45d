%% @doc Compiled terms that built-ins trust, and that sandboxed code could
%% forge from data.
%%
%% `re' runs the bytecode of a compiled pattern without checking it: up to
%% OTP 27 a compiled pattern is `{re_pattern, _, _, _, Bytecode}' with the
%% bytecode as a plain binary, and from OTP 28 `re:import/1' decodes a
%% serialised pattern (`{re_exported_pattern, ...}', what Elixir's `~r'
%% literals compile to there) just as blindly. A hand-made one kills the
%% process that runs it, in ways no `catch' sees, or corrupts the VM.
%% (`binary:compile_pattern/1', compiled match specs, OTP 28's compiled
%% patterns hold a reference to a native object, which data cannot forge.)
%%
%% So before a call that can reach such a built-in (the built-ins themselves,
%% every export of `re' but the compilers, and every function of Elixir,
%% stdlib and kernel that reaches one, derived with `xref' like the other
%% sets of `seccomp_reach'), every compiled pattern in its arguments must be
%% genuine: one `re:compile/1,2' returned to this sandbox, one equal to what
%% its source compiles to (a `Regex' struct's `source' and `opts', an
%% exported pattern's own source and options), or one that holds a
%% reference. Anything else tagged as a compiled pattern is refused.
-module(seccomp_opaque).

-export([check/5, produced/4, forget/1, member/3, spec/0, sinks/0, ensure/0, derive/0]).

-export_type([store/0]).

%% Where a sandbox keeps the compiled patterns it has seen genuine: its
%% member table, or (caller mode) the caller's dictionary for the run.
-type store() :: ets:tid() | caller.

-define(KEY, {?MODULE, set}).
-define(DICT, '$seccomp_genuine').
-define(COUNT, '$seccomp_genuine_count').
%% Patterns remembered per run; past this, structs are checked again each
%% time and other patterns refused.
-define(MAX_KNOWN, 4096).
%% Protocol dispatch reaches every implementation (see `seccomp_reach').
-define(CUT, ['Elixir.Enumerable', 'Elixir.Collectable', 'Elixir.Inspect',
              'Elixir.String.Chars', 'Elixir.List.Chars']).

%% @doc The built-ins that take a compiled pattern: every export of `re' but
%% those that only compile source text (default deny: a new export counts).
-spec sinks() -> [mfa()].
sinks() ->
    [{re, F, A} || {F, A} <- re:module_info(exports),
                   not lists:member(F, [compile, ucompile, version, module_info])].

%% @doc What the background derivation (`seccomp_callgraph:start_link/1')
%% derives for this module.
-spec spec() -> seccomp_callgraph:spec().
spec() -> #{key => ?KEY, apps => [elixir, stdlib, kernel], cut => ?CUT, sinks => sinks()}.

%% @doc Wait until the set is known, deriving it here if no one else is.
-spec ensure() -> ok.
ensure() -> seccomp_callgraph:ensure(spec()).

%% @doc The sinks and the exported functions that reach one.
-spec derive() -> {ok, [mfa()]} | error.
derive() -> seccomp_callgraph:derive(spec()).

%% @doc Whether `M:F/A' can reach a built-in that trusts a compiled pattern;
%% while the set is not known, every function can.
-spec member(module(), atom(), arity()) -> boolean().
member(M, F, A) -> seccomp_callgraph:status(?KEY, {M, F, A}) =/= false.

%% @doc Whether every compiled pattern in the arguments of a call of
%% `M:F' is genuine (`ok' at once for a call that reaches no such
%% built-in): `forged' if one is not, `over' if the arguments have more than
%% `Budget' nodes, counted as flattened (shared subterms each time).
-spec check(module(), atom(), list(), store(), non_neg_integer()) -> ok | forged | over.
check(M, F, Args, Store, Budget) ->
    case member(M, F, length(Args)) of
        false -> ok;
        true ->
            try walk([Args], Store, Budget) of
                _ -> ok
            catch
                throw:Verdict when Verdict =:= forged; Verdict =:= over -> Verdict
            end
    end.

%% @doc Remember the pattern a compiler built-in returned (`re:compile/1,2').
-spec produced(module(), atom(), term(), store()) -> ok.
produced(re, compile, {ok, {re_pattern, _, _, _, Code}}, Store) when is_binary(Code) ->
    remember(Code, Store);
produced(_M, _F, _Result, _Store) ->
    ok.

%% @doc Forget what a run has seen (a warm process's next run; a caller-mode
%% run's dictionary is dropped whole when it ends).
-spec forget(ets:tid()) -> ok.
forget(Tab) ->
    ets:match_delete(Tab, {{?DICT, '_'}, '_'}),
    ets:delete(Tab, ?COUNT),
    ok.

%%% The walk -----------------------------------------------------------------

walk([], _Store, Left) -> Left;
walk(_Terms, _Store, Left) when Left =< 0 -> throw(over);
walk([T | Rest], Store, Left) when is_list(T) ->
    case T of
        [] -> walk(Rest, Store, Left - 1);
        [H | Tl] -> walk([H, Tl | Rest], Store, Left - 1)
    end;
walk([{re_pattern, _, _, _, _} = P | Rest], Store, Left) ->
    pattern(P, none, Store),
    walk(Rest, Store, Left - 1);
walk([{re_exported_pattern, _, _, _, _} = P | Rest], Store, Left) ->
    pattern(P, none, Store),
    walk(Rest, Store, Left - 1);
walk([T | _Rest], _Store, _Left) when is_tuple(T), tuple_size(T) > 0,
                                      (element(1, T) =:= re_pattern orelse
                                       element(1, T) =:= re_exported_pattern) ->
    throw(forged);
walk([T | Rest], Store, Left) when is_tuple(T) ->
    walk(tuple_to_list(T) ++ Rest, Store, Left - 1);
walk([#{'__struct__' := 'Elixir.Regex', re_pattern := P} = Regex | Rest], Store, Left) ->
    pattern(P, {maps:get(source, Regex, none), maps:get(opts, Regex, none)}, Store),
    walk(maps:values(maps:remove(re_pattern, Regex)) ++ Rest, Store, Left - 1);
walk([T | Rest], Store, Left) when is_map(T) ->
    walk(maps:keys(T) ++ maps:values(T) ++ Rest, Store, Left - 1);
walk([_Leaf | Rest], Store, Left) ->
    walk(Rest, Store, Left - 1).

%% A compiled pattern, with the source it claims (a `Regex' struct's).
pattern({re_pattern, _, _, _, Ref}, _Source, _Store) when is_reference(Ref) ->
    %% OTP 28+: a native object; a reference made by data is no such object.
    ok;
pattern({re_pattern, _, _, _, Code} = P, Source, Store) when is_binary(Code) ->
    known(Code, Store) orelse compiles_to(Source, P) orelse throw(forged),
    remember(Code, Store);
pattern({re_exported_pattern, _, Orig, Opts, _} = P, _Source, Store) ->
    known(P, Store) orelse compiles_to({exported, Orig, Opts}, P) orelse throw(forged),
    remember(P, Store);
pattern(_Other, _Source, _Store) ->
    throw(forged).

%% Whether the source compiles, here and now, to exactly `Pattern'.
compiles_to({exported, Orig, Opts}, Pattern) when is_binary(Orig), is_list(Opts) ->
    try re:compile(Orig, Opts) of
        {ok, Compiled} -> Compiled =:= Pattern;
        _ -> false
    catch
        _:_ -> false
    end;
compiles_to({Source, Opts}, Pattern) when is_binary(Source), Opts =/= none ->
    try 'Elixir.Regex':compile(Source, Opts) of
        {ok, #{re_pattern := Compiled}} -> Compiled =:= Pattern;
        _ -> false
    catch
        _:_ -> false
    end;
compiles_to(_Source, _Pattern) ->
    false.

known(Key, caller) -> is_map_key(Key, get_known());
known(Key, Tab) -> ets:member(Tab, {?DICT, Key}).

remember(Key, caller) ->
    Known = get_known(),
    map_size(Known) < ?MAX_KNOWN andalso put(?DICT, Known#{Key => true}),
    ok;
remember(Key, Tab) ->
    case ets:member(Tab, {?DICT, Key}) of
        true -> ok;
        false ->
            ets:update_counter(Tab, ?COUNT, 1, {?COUNT, 0}) =< ?MAX_KNOWN
                andalso ets:insert(Tab, {{?DICT, Key}, true}),
            ok
    end.

get_known() ->
    case get(?DICT) of
        undefined -> #{};
        Known -> Known
    end.
