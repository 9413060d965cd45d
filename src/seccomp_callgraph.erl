%% @doc One call graph of the installed OTP and Elixir, and the sets of
%% functions derived from it.
%%
%% The graph (`xref', calls to built-ins counted, reversed: callee to
%% callers) covers erts, kernel, stdlib, Elixir and logger, whichever are
%% installed. It is built once per VM, in the background, the first time a
%% set is needed ({@link start_link/1}); then each set it is given is
%% derived (the spawners, flatteners, atom makers, superlinear and
%% text-to-integer calls); the denylist closure walks the same graph per
%% policy ({@link reach/2}).
%%
%% A set is its sinks and every exported function of its applications from
%% which a chain of calls reaches one, not following calls made by the
%% set's cut modules (or cut functions), nor calls from other modules into
%% its `cut_into' modules (whose own functions stay members). Until a set is known it is `unknown' to
%% {@link status/2} (its owner treats every call as a member: slower or
%% stricter, never unchecked); where the code cannot be analysed every call
%% is a member for good.
-module(seccomp_callgraph).

-export([start_link/1, ensure/1, ensure_graph/0, status/2, derive/1, graph/0, reach/2, reach/3,
         exported/1, module_forms/1]).

-export_type([spec/0, graph/0]).

-include_lib("kernel/include/file.hrl").

%% A derived set: stored under `key'; `apps' whose exported functions may
%% be members; calls made by `cut' modules or functions are not followed;
%% calls into a `cut_into' module from another module are not followed.
%% With `data_only', a call of a sink whose arguments are all literals
%% (`binary_to_atom(<<"Dict">>)') does not count: it works on no data.
-type spec() :: #{key := term(), apps := [atom()], cut := [module() | mfa()], sinks := [mfa()],
                  cut_into => [module()], data_only => boolean()}.
-type graph() :: #{callers := #{mfa() => [mfa()]}, exports := #{mfa() => true},
                   by_module := #{module() => [mfa()]}, module_app := #{module() => atom()}}.

-define(GRAPH, {?MODULE, graph}).
-define(REQUESTED, {?MODULE, requested}).
-define(APPS, [erts, kernel, stdlib, elixir, logger]).

%% @doc The deriver: a process of the library's supervisor, registered
%% under this module's name (which the library protects), that builds the
%% graph and derives `Specs' the first time anyone asks (the first sandbox
%% call, `no_spawn' check or denylist), in the background; a VM that never
%% asks (a node that only uses the carrier) never pays for it.
-spec start_link([spec()]) -> {ok, pid()}.
start_link(Specs) ->
    {ok, proc_lib:spawn_link(fun() -> register(?MODULE, self()), idle(Specs) end)}.

idle(Specs) ->
    receive
        {derive, From} ->
            Cache = cache_file(Specs),
            cached(Cache, Specs) orelse derive_all(Cache, Specs),
            done(From),
            derived()
    end.

derive_all(Cache, Specs) ->
    known(?GRAPH) orelse persistent_term:put(?GRAPH, build()),
    _ = [store(Spec) || #{key := Key} = Spec <- Specs, not known(Key)],
    save(Cache, Specs).

%%% The cache -------------------------------------------------------------------
%%
%% Building the graph and the sets takes seconds of CPU; every VM on the same
%% installation derives the same result. It is kept in a file named by what
%% it depends on (this module, the specs, the runtime, and every file of the
%% analysed applications with its size and time), in the user's cache
%% directory, or in the directory the application variable
%% `callgraph_cache' names (`false': no file). Whoever can write that
%% directory can already change the code the VM runs (`~/.erlang').

cache_file(Specs) ->
    case application:get_env(beam_seccomp, callgraph_cache, user_cache) of
        false -> none;
        user_cache -> cache_file(filename:basedir(user_cache, "beam_seccomp"), Specs);
        Dir -> cache_file(Dir, Specs)
    end.

cache_file(Dir, Specs) ->
    Installed = [{App, listing(code:lib_dir(App))} || App <- ?APPS],
    %% (Lists of exports come in an order that differs between VMs.)
    Sorted = [maps:map(fun(_, V) when is_list(V) -> lists:sort(V); (_, V) -> V end, S) || S <- Specs],
    Key = erlang:md5(term_to_binary({?MODULE:module_info(md5), Sorted, erlang:system_info(system_version),
                                     Installed})),
    filename:join(Dir, "callgraph-" ++ binary_to_list(binary:encode_hex(Key)) ++ ".bin").

%% The files of an application's code, each with its size and time.
listing({error, _} = Missing) ->
    Missing;
listing(Lib) ->
    Ebin = filename:join(Lib, "ebin"),
    case file:list_dir(Ebin) of
        {ok, Files} -> [{F, size_and_time(filename:join(Ebin, F))} || F <- lists:sort(Files)];
        {error, _} = E -> E
    end.

%% Every key of `Specs' and the graph, from the file; false when there is
%% none or it does not hold them.
cached(none, _Specs) ->
    false;
cached(File, Specs) ->
    Keys = [?GRAPH | [Key || #{key := Key} <- Specs]],
    try binary_to_term(element(2, {ok, _} = file:read_file(File))) of
        #{} = Stored when map_size(Stored) =:= length(Keys) ->
            lists:all(fun(K) -> is_map_key(K, Stored) end, Keys)
                andalso lists:all(fun(K) -> persistent_term:put(K, map_get(K, Stored)) =:= ok end, Keys);
        _ ->
            false
    catch
        _:_ -> false
    end.

size_and_time(File) ->
    case file:read_file_info(File, [{time, posix}]) of
        {ok, #file_info{size = Size, mtime = Time}} -> {Size, Time};
        {error, _} = E -> E
    end.

save(none, _Specs) ->
    ok;
save(File, Specs) ->
    Keys = [?GRAPH | [Key || #{key := Key} <- Specs]],
    Stored = maps:from_list([{K, persistent_term:get(K)} || K <- Keys]),
    Tmp = File ++ "." ++ os:getpid(),
    _ = filelib:ensure_dir(File),
    case file:write_file(Tmp, term_to_binary(Stored, [compressed])) of
        ok -> _ = file:rename(Tmp, File), ok;
        {error, _} -> _ = file:delete(Tmp), ok
    end.

%% Everything is known: answer at once.
derived() ->
    receive {derive, From} -> done(From), derived() end.

done(none) -> ok;
done(From) -> From ! {?MODULE, derived}, ok.

known(Key) -> persistent_term:get(Key, undefined) =/= undefined.

%% @doc Whether `MFA' is in the set stored under `Key': `unknown' until it
%% is derived (the deriver is asked to start), `true' for every function
%% where it cannot be.
-spec status(term(), mfa()) -> boolean() | unknown.
status(Key, MFA) ->
    case persistent_term:get(Key, undefined) of
        undefined ->
            request(),
            unknown;
        all ->
            true;
        Set ->
            is_map_key(MFA, Set)
    end.

%% Ask the deriver to start, once: a loop of calls must not flood it.
request() ->
    case persistent_term:get(?REQUESTED, false) of
        true ->
            ok;
        false ->
            persistent_term:put(?REQUESTED, true),
            %% (Not running: the application is stopped.)
            case whereis(?MODULE) of
                undefined -> ok;
                Pid -> Pid ! {derive, none}, ok
            end
    end.

%% @doc Wait until the set of `Spec' is known: derived by the deriver, or
%% here if there is none (the application is not running).
-spec ensure(spec()) -> ok.
ensure(#{key := Key} = Spec) ->
    case known(Key) of
        true ->
            ok;
        false ->
            ask_deriver(),
            %% A second store (racing the deriver) writes the same value.
            known(Key) orelse store(Spec),
            ok
    end.

ask_deriver() ->
    case whereis(?MODULE) of
        Pid when is_pid(Pid), Pid =/= self() ->
            Ref = monitor(process, Pid),
            Pid ! {derive, self()},
            receive
                {?MODULE, derived} -> demonitor(Ref, [flush]), ok;
                {'DOWN', Ref, process, Pid, _} -> ok
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
derive(#{apps := Apps, cut := Cut, sinks := Sinks} = Spec) ->
    case graph() of
        error ->
            error;
        #{module_app := ModuleApp, callers := Callers} = G ->
            InApps = maps:from_keys(Apps, true),
            Cuts = maps:from_keys(Cut, true),
            Into = maps:from_keys(maps:get(cut_into, Spec, []), true),
            Follow = fun({M, _, _} = Caller, {CM, _, _}) ->
                             is_map_key(maps:get(M, ModuleApp, none), InApps)
                                 andalso not is_map_key(M, Cuts) andalso not is_map_key(Caller, Cuts)
                                 andalso (M =:= CM orelse not is_map_key(CM, Into))
                     end,
            Callers1 = case maps:get(data_only, Spec, false) of
                           true -> maps:merge(Callers, maps:from_list([{S, data_callers(S, Callers, Follow)} || S <- Sinks]));
                           false -> Callers
                       end,
            Reached = walk(Sinks, Callers1, Follow, #{}),
            {ok, lists:usort(Sinks ++ [MFA || MFA <- maps:keys(Reached), exported(MFA, G)])}
    end.

%% The callers of `Sink' that call it with an argument that is not a literal
%% somewhere (or whose code cannot be read).
data_callers(Sink, Callers, Follow) ->
    [C || C <- maps:get(Sink, Callers, []), Follow(C, Sink), not literal_calls_only(C, Sink)].

literal_calls_only({M, F, A}, {SM, SF, SA}) ->
    case function_forms(M, F, A) of
        none ->
            false;
        Clauses ->
            Calls = calls_of(Clauses, SM, SF, SA, []),
            Calls =/= [] andalso lists:all(fun(Args) -> lists:all(fun is_literal/1, Args) end, Calls)
    end.

function_forms(M, F, A) ->
    case [Clauses || {function, _, F1, A1, Clauses} <- module_forms(M), F1 =:= F, A1 =:= A] of
        [Clauses | _] -> Clauses;
        [] -> none
    end.

%% @doc The abstract code of `M' from its debug information; `[]' without.
-spec module_forms(module()) -> [erl_parse:abstract_form()].
module_forms(M) ->
    try
        {ok, {M, [{debug_info, {debug_info_v1, Backend, Data}}]}} =
            beam_lib:chunks(code:which(M), [debug_info]),
        {ok, Forms} = Backend:debug_info(erlang_v1, M, Data, []),
        Forms
    catch
        _:_ -> []
    end.

%% The argument lists of the calls of `SM:SF/SA' in abstract code.
calls_of({call, _, {remote, _, {atom, _, SM}, {atom, _, SF}}, Args} = T, SM, SF, SA, Acc)
  when length(Args) =:= SA ->
    calls_of(tuple_to_list(T), SM, SF, SA, [Args | Acc]);
calls_of({call, _, {atom, _, SF}, Args} = T, erlang, SF, SA, Acc) when length(Args) =:= SA ->
    %% An auto-imported built-in.
    calls_of(tuple_to_list(T), erlang, SF, SA, [Args | Acc]);
calls_of(T, SM, SF, SA, Acc) when is_tuple(T) ->
    calls_of(tuple_to_list(T), SM, SF, SA, Acc);
calls_of(L, SM, SF, SA, Acc) when is_list(L) ->
    lists:foldl(fun(X, A) -> calls_of(X, SM, SF, SA, A) end, Acc, L);
calls_of(_, _SM, _SF, _SA, Acc) ->
    Acc.

is_literal(Expr) ->
    try erl_parse:normalise(Expr) of _ -> true
    catch _:_ -> false
    end.

%% @doc The functions from which a chain of calls reaches one of `Sinks'
%% (the sinks included), following only calls made by functions for which
%% `Follow' is true.
-spec reach([mfa()], fun((mfa()) -> boolean())) -> #{mfa() => true}.
reach(Sinks, Follow) -> reach(Sinks, Follow, #{}).

%% @doc As {@link reach/2}, with `Extra' calls (callee to callers) that the
%% code makes where `xref' does not see them.
-spec reach([mfa()], fun((mfa()) -> boolean()), #{mfa() => [mfa()]}) -> #{mfa() => true}.
reach(Sinks, Follow, Extra) ->
    case graph() of
        error ->
            maps:from_keys(Sinks, true);
        #{callers := Callers} ->
            Merged = maps:fold(fun(To, From, Acc) ->
                                       maps:update_with(To, fun(L) -> From ++ L end, From, Acc)
                               end, Callers, Extra),
            walk(Sinks, Merged, fun(Caller, _Callee) -> Follow(Caller) end, #{})
    end.

walk([], _Callers, _Follow, Seen) ->
    Seen;
walk([MFA | Rest], Callers, Follow, Seen) when is_map_key(MFA, Seen) ->
    walk(Rest, Callers, Follow, Seen);
walk([MFA | Rest], Callers, Follow, Seen) ->
    Next = [C || C <- maps:get(MFA, Callers, []), not is_map_key(C, Seen), Follow(C, MFA)],
    walk(Next ++ Rest, Callers, Follow, Seen#{MFA => true}).

%% @doc Whether `MFA' is an exported function of the analysed code.
-spec exported(mfa()) -> boolean().
exported(MFA) ->
    case graph() of
        error -> false;
        G -> exported(MFA, G)
    end.

exported(MFA, #{exports := Exports}) -> is_map_key(MFA, Exports).

%% @doc The call graph, built if it is not known yet; `error' where the
%% code cannot be analysed.
-spec graph() -> graph() | error.
graph() ->
    case persistent_term:get(?GRAPH, undefined) of
        undefined -> ensure_graph(), persistent_term:get(?GRAPH);
        G -> G
    end.

%% @doc Build the graph now, unless it is known: by the deriver, or here
%% if there is none.
-spec ensure_graph() -> ok.
ensure_graph() ->
    known(?GRAPH) orelse ask_deriver(),
    known(?GRAPH) orelse persistent_term:put(?GRAPH, build()),
    ok.

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
        %% (Its server may be gone: OTP 29's xref fails on code without
        %% debug information, such as a release's.)
        try xref:stop(X) catch _:_ -> ok end
    end.
