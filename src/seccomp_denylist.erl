%% @doc What a denylist leaves open through compiled code. A denylist names
%% functions; library code it does not name may call them (or reach the OS,
%% the file system, code loading, the VM's life or distribution) from code
%% the sandbox cannot see into: `peer:start/1' runs a shell, `zip' reads and
%% writes files, `init:stop/0' halts the VM.
%%
%% For a denylist sandbox policy this module derives, with `xref' over the
%% installed OTP and Elixir, every exported function that can reach a
%% capability sink or a function the policy denies, transitively through
%% compiled code, and adds a deny rule for each one the policy does not
%% allow by an exact rule. Modules outside the analysed applications cannot
%% be judged and are denied unless the policy allows them by name (default
%% deny). The call graph is derived once per VM; the rules once per policy.
-module(seccomp_denylist).

-export([extend/1, closure/1, sinks/1, analysed/0, ensure/0]).

-define(GRAPH, {?MODULE, graph}).
-define(CACHE, {?MODULE, policies}).
%% Distinct denylists whose rules are kept.
-define(MAX_CACHED, 16).
%% Applications whose code the graph covers.
-define(APPS, [erts, elixir, stdlib, kernel, logger]).

%% What reaches outside the VM's data, whatever the policy says: the OS
%% (commands, environment, files, ports), code loading, the VM's life, the
%% distribution, and the system processes that act for others (init, the
%% code, file and application servers, logger's configuration).
-define(SINK_MODULES,
        [os, file, prim_file, file_io_server, file_server, filelib, erl_prim_loader, ram_file,
         code, code_server, erl_ddll, init, heart, net_kernel, auth, erl_epmd, dist_util,
         rpc, erpc, peer, application, application_controller,
         application_master, logger_server, logger_std_h, logger_disk_log_h, disk_log,
         disk_log_server, user_sup, standard_error, group, user_drv, prim_inet, inet_db,
         gen_tcp, gen_udp, gen_sctp, socket, prim_socket, prim_net, net, 'Elixir.File',
         'Elixir.System', 'Elixir.Code', 'Elixir.Port', 'Elixir.Node']).
%% Functions of the sink modules that only read the clock, the system type,
%% where a registered name is, or configuration: not sinks by themselves.
-define(READS,
        [{os, system_time, '_'}, {os, timestamp, 0}, {os, perf_counter, '_'}, {os, type, 0},
         {os, version, 0}, {application, get_key, '_'}, {application, get_env, '_'},
         {application, get_all_env, '_'}, {application, get_application, '_'},
         {application_controller, get_env, '_'}, {application_controller, get_pid_env, '_'},
         {application_controller, get_all_env, '_'}, {application_controller, get_key, '_'},
         {application_controller, get_pid_key, '_'},
         {code, ensure_loaded, 1}, {code, is_loaded, 1}, {code, ensure_modules_loaded, 1},
         {code, get_mode, 0}, {net_kernel, dflag_unicode_io, 1},
         %% A log event a handler failed on: logged, not configuration.
         {logger_server, do_internal_log, '_'}]).
%% Code that only builds an error or a warning: what it calls is on the way
%% to raising, with the sandbox's own data, and any effect it has (loading
%% a module, reading configuration, printing to the group leader) is one the
%% graph would otherwise charge to every function that can raise.
-define(ERROR_PATHS, [{'Elixir.IO', warn, '_'}, {'Elixir.IO', warn_once, '_'},
                      {io_lib, test_modules_loaded, '_'},
                      %% Reads the command line's feature flags, returns keywords.
                      {erl_features, '_', '_'},
                      %% Asks a remote parent's node for its name (rpc: routed).
                      {proc_lib, proc_info, 2},
                      {'Elixir.Supervisor', child_spec_error, '_'},
                      %% Runs the handlers configured for a log event (and
                      %% removes one that fails): logging, not configuring.
                      {logger_backend, '_', '_'}]).
-define(SINK_BIFS,
        [{erlang, open_port, 2}, {erlang, halt, 0}, {erlang, halt, 1}, {erlang, halt, 2},
         {erlang, load_module, 2}, {erlang, load_nif, 2}, {erlang, purge_module, 1},
         {erlang, delete_module, 1}, {erlang, set_cookie, 1}, {erlang, set_cookie, 2},
         {erlang, disconnect_node, 1}, {erlang, spawn, 2}, {erlang, spawn, 4},
         {erlang, spawn_link, 2}, {erlang, spawn_link, 4}, {erlang, spawn_opt, 3},
         {erlang, spawn_opt, 5}, {erlang, system_flag, 2}, {erlang, trace, 3},
         {erlang, trace_pattern, 2}, {erlang, trace_pattern, 3}, {erlang, port_command, 2},
         {erlang, port_command, 3}, {erlang, port_control, 3}, {erlang, port_call, 3},
         {erlang, suspend_process, 1}, {erlang, suspend_process, 2}, {erlang, dist_ctrl_put_data, 2}]).

%% @doc `Policy' extended with the derived deny rules when it is a denylist;
%% unchanged otherwise.
-spec extend(seccomp_policy:t()) -> seccomp_policy:t().
extend(Policy) ->
    Spec = seccomp_policy:spec(Policy),
    case maps:get(mode, Spec) of
        blacklist ->
            Key = erlang:phash2(Spec),
            Cache = persistent_term:get(?CACHE, #{}),
            case Cache of
                #{Key := {Spec, Extended}} ->
                    Extended;
                _ ->
                    Extended = derived_policy(Spec),
                    Kept = case map_size(Cache) >= ?MAX_CACHED of
                               true -> #{};
                               false -> Cache
                           end,
                    persistent_term:put(?CACHE, Kept#{Key => {Spec, Extended}}),
                    Extended
            end;
        _ ->
            Policy
    end.

derived_policy(#{rules := Rules} = Spec) ->
    Extra = [{M, F, A} || {M, F, A} <- closure(Spec), not explicitly_allowed({M, F, A}, Rules)]
        ++ [{M, '_', '_'} || M <- unanalysed(), not module_allowed(M, Rules)],
    {ok, P} = seccomp_policy:new(Spec#{rules := Rules ++ Extra}),
    P.

%% @doc The exported functions of the analysed applications that a sandbox
%% under the denylist `Spec' must not call: those that can reach a sink.
-spec closure(map()) -> [mfa()].
closure(Spec) ->
    #{callers := Callers, functions := Functions} = graph(),
    Sinks = sinks(Spec),
    Reached = reach(Sinks, Callers, #{}),
    [MFA || MFA <- maps:keys(Reached), is_map_key(MFA, Functions)].

%% @doc The sinks under the denylist `Spec': the capability sinks and every
%% function the policy denies.
-spec sinks(map()) -> [mfa()].
sinks(#{rules := Rules}) ->
    #{modules := Modules} = graph(),
    Denied = [P || R <- Rules, P <- [pattern(R)], P =/= allowed],
    %% A read of the clock or of configuration is no sink even where the
    %% policy denies it: denied when called, not in what library code reaches.
    Seeds = ?SINK_BIFS
        ++ [MFA || M <- ?SINK_MODULES, MFA <- maps:get(M, Modules, [])]
        ++ [MFA || {M, F, A} <- Denied,
                   MFA <- maps:get(M, Modules, []) ++ [{M, F, A} || is_integer(A), F =/= '_'],
                   matches({M, F, A}, MFA)],
    lists:usort([MFA || MFA <- Seeds, not lists:any(fun(R) -> matches(R, MFA) end, ?READS)]).

pattern(#{action := allow}) -> allowed;
pattern(#{match := P}) -> P;
pattern(P) -> P.

matches({M, F, A}, {M, F1, A1}) -> (F =:= '_' orelse F =:= F1) andalso (A =:= '_' orelse A =:= A1);
matches(_, _) -> false.

explicitly_allowed(MFA, Rules) -> lists:member(#{match => MFA, action => allow}, Rules).

module_allowed(M, Rules) ->
    lists:any(fun(#{match := {M1, _, _}, action := allow}) -> M1 =:= M;
                 (_) -> false
              end, Rules).

error_path(MFA) -> lists:any(fun(P) -> matches(P, MFA) end, ?ERROR_PATHS).

reach([], _Callers, Seen) ->
    Seen;
reach([MFA | Rest], Callers, Seen) when is_map_key(MFA, Seen) ->
    reach(Rest, Callers, Seen);
reach([MFA | Rest], Callers, Seen) ->
    reach(maps:get(MFA, Callers, []) ++ Rest, Callers, Seen#{MFA => true}).

%% @doc The modules the graph covers.
-spec analysed() -> #{module() => true}.
analysed() -> maps:get(analysed, graph()).

%% Modules on the code path (or loaded) outside the analysed applications.
unanalysed() ->
    Analysed = analysed(),
    [M || {Name, _, _} <- code:all_available(), M <- [list_to_atom(Name)], not is_map_key(M, Analysed)].

%% The call graph of the analysed applications, reversed (callee to
%% callers), with their exported functions; protocols' dispatch edges cut
%% (a forged struct is refused where it is passed, see seccomp_sandbox_data).
graph() ->
    case persistent_term:get(?GRAPH, undefined) of
        undefined -> ensure(), persistent_term:get(?GRAPH);
        G -> G
    end.

%% @doc Derive the call graph now, unless it is known; callers that come
%% while one process derives it wait for that one.
-spec ensure() -> ok.
ensure() ->
    case persistent_term:get(?GRAPH, undefined) of
        undefined ->
            {Pid, Ref} = spawn_monitor(fun() -> derive_once() end),
            receive {'DOWN', Ref, process, Pid, _} -> ok end,
            case persistent_term:get(?GRAPH, undefined) of
                undefined -> ensure();
                _ -> ok
            end;
        _ ->
            ok
    end.

%% The registered name makes one deriver at a time; a second one waits for
%% the first and ends.
derive_once() ->
    try register(?MODULE, self()) of
        true -> persistent_term:put(?GRAPH, derive())
    catch
        error:badarg ->
            case whereis(?MODULE) of
                undefined -> ok;
                Other ->
                    Ref = monitor(process, Other),
                    receive {'DOWN', Ref, process, Other, _} -> ok end
            end
    end.

derive() ->
    {ok, X} = xref:start([{xref_mode, functions}]),
    try
        ok = xref:set_default(X, [{warnings, false}, {verbose, false}, {builtins, true}]),
        _ = [{ok, _} = xref:add_directory(X, filename:join(code:lib_dir(App), "ebin"))
             || App <- ?APPS, code:lib_dir(App) =/= {error, bad_name}],
        {ok, Exports} = xref:q(X, "X"),
        {ok, Protocols} = xref:q(X, "(Mod) (X * \"\":\"__protocol__\"/1)"),
        {ok, Edges} = xref:q(X, "E"),
        {ok, AnalysedModules} = xref:q(X, "AM"),
        %% Exception modules (the `Elixir.Exception' behaviour's and the
        %% protocols') only build errors.
        {ok, ExceptionModules} = xref:q(X, "(Mod) (X * \"\":\"exception\"/1) * (Mod) (X * \"\":\"message\"/1)"),
        Cut = maps:from_keys(['Elixir.Exception' | Protocols ++ ExceptionModules], true),
        Callers = lists:foldl(fun({{M, _, _} = From, To}, Acc) ->
                                      case is_map_key(M, Cut) orelse error_path(From) of
                                          true -> Acc;
                                          false -> maps:update_with(To, fun(L) -> [From | L] end, [From], Acc)
                                      end
                              end, #{}, Edges),
        %% Every function by module: exports, and the built-ins called.
        Modules = lists:foldl(fun({M, _, _} = MFA, Acc) ->
                                      maps:update_with(M, fun(L) -> [MFA | L] end, [MFA], Acc)
                              end, #{}, lists:usort(Exports ++ maps:keys(Callers))),
        #{callers => Callers, functions => maps:from_keys(Exports, true), modules => Modules,
          analysed => maps:from_keys(AnalysedModules, true)}
    after
        xref:stop(X)
    end.
