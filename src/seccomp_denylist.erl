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
%% deny). The call graph is the shared one (`seccomp_callgraph', built once
%% per VM); the rules are derived once per policy.
-module(seccomp_denylist).

-export([extend/1, closure/1, sinks/1, analysed/0]).

-define(CACHE, {?MODULE, policies}).
-define(EFFECTFUL, {?MODULE, effectful}).
-define(INTROSPECTING, {?MODULE, introspecting}).
-define(TABLE_USERS, {?MODULE, table_users}).
%% The introspection built-ins whose answer depends on their key.
-define(KEYED, [{erlang, system_info, 1}, {erlang, statistics, 1}]).
%% Distinct denylists whose rules are kept.
-define(MAX_CACHED, 16).
%% What reaches outside the VM's data, whatever the policy says: the OS
%% (commands, environment, files, ports), code loading, the VM's life, the
%% distribution, and the system processes that act for others (init, the
%% code, file and application servers, logger's configuration, the
%% processes that keep `disk_log' files). `dets' needs no naming: its
%% table processes' file work is reached through `seccomp_served'.
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
         {code, get_mode, 0}, {'Elixir.Code', 'loaded?', 1}, {'Elixir.Code', 'ensure_loaded?', 1},
         {'Elixir.Code', ensure_loaded, 1}, {net_kernel, dflag_unicode_io, 1},
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
                      {logger_backend, '_', '_'},
                      %% Hands a log event of the runtime or another node
                      %% to the handlers: logging.
                      {logger_proxy, log, '_'}]).
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
    %% A server's work for its client is the client's (`seccomp_served').
    Reached = seccomp_callgraph:reach(sinks(Spec), follow(), seccomp_served:edges()),
    [MFA || MFA <- maps:keys(maps:merge(Reached, table_users())), seccomp_callgraph:exported(MFA)].

%% The functions that reach a host table their code names
%% (`seccomp_host_tables'), not through the behaviour modules: they name
%% `global''s tables only to address `{global, Name}', which the sandbox
%% refuses where data names it. Once per VM.
table_users() ->
    case persistent_term:get(?TABLE_USERS, undefined) of
        undefined ->
            Follow = follow(),
            NotBehaviour = fun({M, _, _} = From) -> Follow(From) andalso not seccomp_served:behaviour(M) end,
            Seeds = [MFA || MFA <- seccomp_host_tables:users(), not read(MFA)],
            Users = seccomp_callgraph:reach(Seeds, NotBehaviour, seccomp_served:edges()),
            persistent_term:put(?TABLE_USERS, Users),
            Users;
        Users ->
            Users
    end.

%% Calls not followed: those made by protocols, exception modules, the
%% error paths, and the reads of the clock or configuration (what a read
%% calls is how it reads).
follow() ->
    Cut = cut_modules(),
    fun({M, _, _} = From) -> not is_map_key(M, Cut) andalso not error_path(From) andalso not read(From) end.

%% @doc The sinks under the denylist `Spec': the capability BIFs, the
%% introspection and console built-ins (and the functions that pass a key
%% of their data to `system_info/1' or `statistics/1'), the
%% functions it names (every arity where it names no arity), and the
%% functions of the capability modules and of the modules it denies whole
%% that can have an effect beyond computing a value (see effectful/0).
-spec sinks(map()) -> [mfa()].
sinks(#{rules := Rules}) ->
    Modules = case seccomp_callgraph:graph() of
                  #{by_module := ByModule} -> ByModule;
                  error -> #{}
              end,
    Effectful = effectful(),
    Effect = fun(MFA) -> Effectful =:= all orelse is_map_key(MFA, Effectful) end,
    Denied = [P || R <- Rules, P <- [pattern(R)], P =/= allowed],
    %% A read of the clock or of configuration is no sink even where the
    %% policy denies it: denied when called, not in what library code reaches.
    Seeds = ?SINK_BIFS ++ seccomp_introspection:sinks() ++ introspecting()
        ++ [MFA || M <- ?SINK_MODULES, MFA <- maps:get(M, Modules, []), Effect(MFA)]
        ++ [MFA || {M, F, A} <- Denied, F =/= '_',
                   MFA <- maps:get(M, Modules, []) ++ [{M, F, A} || is_integer(A)],
                   matches({M, F, A}, MFA)]
        ++ [MFA || {M, '_', A} <- Denied, MFA <- maps:get(M, Modules, []),
                   matches({M, '_', A}, MFA), Effect(MFA)],
    lists:usort([MFA || MFA <- Seeds, not read(MFA)]).

read(MFA) -> lists:any(fun(R) -> matches(R, MFA) end, ?READS).

%% The functions that ask `system_info/1' or `statistics/1' for a key that
%% is not a literal of their code (the handler judges the built-ins' own
%% keys); the closure's walk goes on from them. Once per VM.
introspecting() ->
    case persistent_term:get(?INTROSPECTING, undefined) of
        undefined ->
            Spec = #{key => ?INTROSPECTING, apps => lists:usort(maps:values(analysed())), cut => [],
                     sinks => ?KEYED, data_only => true},
            Set = case {seccomp_callgraph:derive(Spec), seccomp_callgraph:graph()} of
                      {{ok, L}, #{callers := Callers}} ->
                          Derived = maps:from_keys(L, true),
                          lists:usort([C || K <- ?KEYED, C <- maps:get(K, Callers, []), is_map_key(C, Derived)]);
                      _ ->
                          []
                  end,
            persistent_term:put(?INTROSPECTING, Set),
            Set;
        Set ->
            Set
    end.

%% The functions that can have an effect beyond computing a value: those
%% from which a call chain reaches a function with no code of its own (a
%% built-in, a NIF, a call to code outside the graph or by a computed name)
%% that is neither a data function of the `pure' profile nor a read of the
%% clock or configuration, through functions that are neither. Only they carry what a module's denial is for: a
%% denied module's function that merely computes (`System.convert_time_unit/3')
%% gives no more than the code could compute itself. Once per VM.
effectful() ->
    case persistent_term:get(?EFFECTFUL, undefined) of
        undefined ->
            Effectful = derive_effectful(),
            persistent_term:put(?EFFECTFUL, Effectful),
            Effectful;
        Effectful ->
            Effectful
    end.

derive_effectful() ->
    case seccomp_callgraph:graph() of
        error ->
            all;
        #{callers := Callers} ->
            WithCode = maps:from_keys(lists:append(maps:values(Callers)), true),
            %% A built-in or NIF stub's code only raises `nif_error'.
            Natives = maps:from_keys(maps:get({erlang, nif_error, 1}, Callers, [])
                                     ++ maps:get({erlang, nif_error, 2}, Callers, []), true),
            Effects = [MFA || MFA <- maps:keys(Callers),
                              not is_map_key(MFA, WithCode) orelse is_map_key(MFA, Natives),
                              not inert(MFA)],
            %% A data function is inert whatever its code calls (the
            %% runtime's own helpers of `erlang:convert_time_unit/3').
            Follow = follow(),
            seccomp_callgraph:reach(Effects, fun(MFA) -> Follow(MFA) andalso not inert(MFA) end)
    end.

inert({M, F, A} = MFA) -> seccomp_profiles:data_function(M, F, A) orelse read(MFA).

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

%% @doc The modules the graph covers.
-spec analysed() -> #{module() => atom()}.
analysed() ->
    case seccomp_callgraph:graph() of
        #{module_app := ModuleApp} -> ModuleApp;
        error -> #{}
    end.

%% Modules on the code path (or loaded) outside the analysed applications.
unanalysed() ->
    Analysed = analysed(),
    [M || {Name, _, _} <- code:all_available(), M <- [list_to_atom(Name)], not is_map_key(M, Analysed)].

%% Calls made by these modules are not followed: protocols' dispatch (a
%% forged struct is refused where it is passed, see seccomp_sandbox_data)
%% and exception modules (the `Elixir.Exception' behaviour's and the
%% protocols'), which only build errors.
cut_modules() ->
    Exports = case seccomp_callgraph:graph() of
                  #{exports := E} -> E;
                  error -> #{}
              end,
    Protocols = [M || {M, '__protocol__', 1} <- maps:keys(Exports)],
    Exceptions = [M || {M, exception, 1} <- maps:keys(Exports), is_map_key({M, message, 1}, Exports)],
    maps:from_keys(['Elixir.Exception' | Protocols ++ Exceptions], true).
