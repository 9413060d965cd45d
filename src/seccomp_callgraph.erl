%% @doc One call graph of the installed OTP and Elixir, and the sets of
%% functions derived from it.
%%
%% The graph (`xref', calls to built-ins counted, reversed: callee to
%% callers) covers erts, kernel, stdlib, Elixir and logger, whichever are
%% installed. It is built once per VM: {@link start_link/1} builds it in the
%% background at application start, then derives each set it is given (the
%% spawners, flatteners, atom makers, superlinear and text-to-integer
%% calls); the denylist closure walks the same graph per policy
%% ({@link reach/2}).
%%
%% A set is its sinks and every exported function of its applications from
%% which a chain of calls reaches one, not following calls made by the
%% set's cut modules. Until a set is known it is `unknown' to
%% {@link status/2} (its owner treats every call as a member: slower or
%% stricter, never unchecked); where the code cannot be analysed every call
%% is a member for good.
-module(seccomp_callgraph).

-export([start_link/1, ensure/1, ensure_graph/0, status/2, derive/1, graph/0, reach/2, exported/1]).

-export_type([spec/0, graph/0]).

%% A derived set: stored under `key'; `apps' whose exported functions may
%% be members; calls made by `cut' modules are not followed.
-type spec() :: #{key := term(), apps := [atom()], cut := [module()], sinks := [mfa()]}.
-type graph() :: #{callers := #{mfa() => [mfa()]}, exports := #{mfa() => true},
                   by_module := #{module() => [mfa()]}, module_app := #{module() => atom()}}.

-define(GRAPH, {?MODULE, graph}).
-define(APPS, [erts, kernel, stdlib, elixir, logger]).

%% @doc Build the graph and derive `Specs' in the background (a process of
%% the library's supervisor, registered under this module's name, which the
%% library protects whether or not a process holds it). Once per VM: what
%% is known already is not derived again, and a second start while one runs
%% does nothing.
-spec start_link([spec()]) -> {ok, pid()}.
start_link(Specs) ->
    {ok, proc_lib:spawn_link(fun() -> derive_all(Specs) end)}.

derive_all(Specs) ->
    try register(?MODULE, self()) of
        true ->
            known(?GRAPH) orelse persistent_term:put(?GRAPH, build()),
            _ = [store(Spec) || #{key := Key} = Spec <- Specs, not known(Key)],
            ok
    catch
        error:badarg -> ok
    end.

known(Key) -> persistent_term:get(Key, undefined) =/= undefined.

%% @doc Whether `MFA' is in the set stored under `Key': `unknown' until it
%% is derived, `true' for every function where it cannot be.
-spec status(term(), mfa()) -> boolean() | unknown.
status(Key, MFA) ->
    case persistent_term:get(Key, undefined) of
        undefined -> unknown;
        all -> true;
        Set -> is_map_key(MFA, Set)
    end.

%% @doc Wait until the set of `Spec' is known, deriving it here if no one
%% else is.
-spec ensure(spec()) -> ok.
ensure(#{key := Key} = Spec) ->
    case persistent_term:get(Key, undefined) of
        undefined ->
            wait_for_deriver(),
            case persistent_term:get(Key, undefined) of
                %% A second store (racing a background one) writes the same value.
                undefined -> store(Spec);
                _ -> ok
            end;
        _ ->
            ok
    end.

store(#{key := Key} = Spec) ->
    Set = case derive(Spec) of
              {ok, L} -> maps:from_keys(L, true);
              error -> all
          end,
    persistent_term:put(Key, Set),
    ok.

%% @doc The sinks of `Spec' and the exported functions of its applications
%% that reach one; `error' where the code cannot be analysed.
-spec derive(spec()) -> {ok, [mfa()]} | error.
derive(#{apps := Apps, cut := Cut, sinks := Sinks}) ->
    case graph() of
        error ->
            error;
        #{module_app := ModuleApp} = G ->
            InApps = maps:from_keys(Apps, true),
            Cuts = maps:from_keys(Cut, true),
            Follow = fun({M, _, _}) ->
                             is_map_key(maps:get(M, ModuleApp, none), InApps) andalso not is_map_key(M, Cuts)
                     end,
            Reached = reach(Sinks, Follow),
            {ok, lists:usort(Sinks ++ [MFA || MFA <- maps:keys(Reached), exported(MFA, G)])}
    end.

%% @doc The functions from which a chain of calls reaches one of `Sinks'
%% (the sinks included), following only calls made by functions for which
%% `Follow' is true.
-spec reach([mfa()], fun((mfa()) -> boolean())) -> #{mfa() => true}.
reach(Sinks, Follow) ->
    case graph() of
        error -> maps:from_keys(Sinks, true);
        #{callers := Callers} -> walk(Sinks, Callers, Follow, #{})
    end.

walk([], _Callers, _Follow, Seen) ->
    Seen;
walk([MFA | Rest], Callers, Follow, Seen) when is_map_key(MFA, Seen) ->
    walk(Rest, Callers, Follow, Seen);
walk([MFA | Rest], Callers, Follow, Seen) ->
    Next = [C || C <- maps:get(MFA, Callers, []), not is_map_key(C, Seen), Follow(C)],
    walk(Next ++ Rest, Callers, Follow, Seen#{MFA => true}).

%% @doc Whether `MFA' is an exported function of the analysed code.
-spec exported(mfa()) -> boolean().
exported(MFA) ->
    case graph() of
        error -> false;
        G -> exported(MFA, G)
    end.

exported(MFA, #{exports := Exports}) -> is_map_key(MFA, Exports).

%% @doc The call graph, built here if it is not known yet; `error' where
%% the code cannot be analysed.
-spec graph() -> graph() | error.
graph() ->
    case persistent_term:get(?GRAPH, undefined) of
        undefined -> ensure_graph(), persistent_term:get(?GRAPH);
        G -> G
    end.

%% @doc Build the graph now, unless it is known; callers that come while
%% one process builds it wait for that one.
-spec ensure_graph() -> ok.
ensure_graph() ->
    case persistent_term:get(?GRAPH, undefined) of
        undefined ->
            %% In a process of its own: the one that registers builds, the others wait.
            {Pid, Ref} = spawn_monitor(fun build_once/0),
            receive {'DOWN', Ref, process, Pid, _} -> ok end,
            ensure_graph();
        _ ->
            ok
    end.

build_once() ->
    try register(?MODULE, self()) of
        true -> persistent_term:put(?GRAPH, build())
    catch
        error:badarg -> wait_for_deriver()
    end.

%% The background deriver builds the graph first, then the sets.
wait_for_deriver() ->
    case whereis(?MODULE) of
        undefined ->
            ok;
        Self when Self =:= self() ->
            ok;
        Pid ->
            Ref = monitor(process, Pid),
            receive {'DOWN', Ref, process, Pid, _} -> ok end
    end.

build() ->
    {ok, X} = xref:start([{xref_mode, functions}]),
    try
        %% `builtins': most sinks are BIFs, whose calls xref skips by default.
        ok = xref:set_default(X, [{warnings, false}, {verbose, false}, {builtins, true}]),
        ModuleApp = maps:from_list([{M, App} || App <- ?APPS, code:lib_dir(App) =/= {error, bad_name},
                                                {ok, Ms} <- [xref:add_directory(X, filename:join(code:lib_dir(App), "ebin"))],
                                                M <- Ms]),
        {ok, Exports} = xref:q(X, "X"),
        {ok, Edges} = xref:q(X, "E"),
        Callers = lists:foldl(fun({From, To}, Acc) ->
                                      maps:update_with(To, fun(L) -> [From | L] end, [From], Acc)
                              end, #{}, Edges),
        %% Every function by module: exports, and the built-ins called.
        ByModule = lists:foldl(fun({M, _, _} = MFA, Acc) ->
                                       maps:update_with(M, fun(L) -> [MFA | L] end, [MFA], Acc)
                               end, #{}, lists:usort(Exports ++ maps:keys(Callers))),
        #{callers => Callers, exports => maps:from_keys(Exports, true), by_module => ByModule,
          module_app => ModuleApp}
    catch
        _:_ -> error
    after
        xref:stop(X)
    end.
