%% @doc What no restricted process may reach through a mediated entry point,
%% whatever its own policy says: every module of this application, and
%% whatever loads code, evaluates code or traces.
%%
%% The sets are derived, not typed: the application's modules are read from
%% its `.app' file and its code directory, and the code loading, evaluation
%% and tracing tools from the `.app' files of the OTP applications that hold
%% them, so a module added to any of them is covered without an edit here.
-module(seccomp_guard).

-export([modules/0, app_modules/0, functions/0, native_spec/0]).

%% OTP applications that load, compile, evaluate or trace code as a whole.
-define(TOOL_APPS, [compiler, runtime_tools, tools, debugger, observer, et, parsetools]).

%% @doc Modules that are refused as a whole.
-spec modules() -> [module()].
modules() ->
    lists:usort(app_modules() ++ tool_modules() ++ elixir_code_modules() ++
                [%% code loading and evaluation outside the tool applications
                 code, code_server, erl_prim_loader, erl_ddll, erts_code_purger, error_handler,
                 erl_eval, erl_lint, erl_expand_records, erl_parse, epp, shell,
                 %% tracing and changing what other processes or the runtime do
                 erts_internal, erl_tracer, seq_trace, sys, persistent_term, prim_file,
                 erts_debug]).

%% @doc Every module of beam_seccomp: its `.app' file and the code next to this module.
-spec app_modules() -> [module()].
app_modules() ->
    case persistent_term:get({?MODULE, all_modules}, undefined) of
        undefined ->
            Ebin = filename:dirname(code:which(?MODULE)),
            Beams = [list_to_atom(filename:rootname(F)) || F <- filelib:wildcard("*.beam", Ebin, erl_prim_loader)],
            Modules = lists:usort([?MODULE | listed_modules(Ebin, beam_seccomp) ++ Beams]),
            persistent_term:put({?MODULE, all_modules}, Modules),
            Modules;
        Modules ->
            Modules
    end.

tool_modules() ->
    lists:append([app_keys(App) || App <- ?TOOL_APPS]).

%% The `modules' of an installed application, read from its `.app' file.
app_keys(App) ->
    %% (code:lib_dir/2 is deprecated from OTP 27)
    case code:lib_dir(App) of
        {error, _} -> [];
        Dir -> listed_modules(filename:join(Dir, "ebin"), App)
    end.

%% (`seccomp_nif' loads with the guard: the carrier may load it before the
%% file server runs.)
listed_modules(Ebin, App) ->
    case seccomp_term_file:read(filename:join(Ebin, atom_to_list(App) ++ ".app")) of
        {ok, {application, App, Keys}} -> proplists:get_value(modules, Keys, []);
        _ -> []
    end.

%% Elixir's compiler entry points: `Code', `Module' and what they drive.
elixir_code_modules() ->
    Prefixes = ["Elixir.Code", "Elixir.Module", "Elixir.Kernel.ParallelCompiler",
                "Elixir.Kernel.ErrorHandler", "Elixir.Kernel.LexicalTracker", "elixir_compiler",
                "elixir_module", "elixir_def", "elixir_lexical"],
    %% The entry points are named too: Elixir may reach the code path only
    %% after this list is made.
    [elixir, 'Elixir.Code', 'Elixir.Module', 'Elixir.Kernel.ErrorHandler', elixir_compiler,
     elixir_module, elixir_def
     | [M || M <- app_keys(elixir), lists:any(fun(P) -> lists:prefix(P, atom_to_list(M)) end, Prefixes)]].

%% @doc Single BIFs that load code, trace, or change the runtime.
-spec functions() -> [mfa()].
functions() ->
    [{erlang, load_nif, 2}, {erlang, load_module, 2}, {erlang, purge_module, 1},
     {erlang, delete_module, 1}, {erlang, prepare_loading, 2}, {erlang, finish_loading, 1},
     {erlang, check_process_code, 2}, {erlang, check_process_code, 3},
     {erlang, trace, 3}, {erlang, trace, 4}, {erlang, trace_pattern, 2}, {erlang, trace_pattern, 3},
     {erlang, trace_pattern, 4}, {erlang, trace_info, 2}, {erlang, trace_info, 3},
     {erlang, trace_delivered, 1}, {erlang, seq_trace, 2}, {erlang, seq_trace_info, 1},
     {erlang, seq_trace_print, 1}, {erlang, seq_trace_print, 2},
     {erlang, system_monitor, 0}, {erlang, system_monitor, 1}, {erlang, system_monitor, 2},
     {erlang, system_profile, 0}, {erlang, system_profile, 2},
     {erlang, suspend_process, 1}, {erlang, suspend_process, 2}, {erlang, resume_process, 1},
     {erlang, system_flag, 2}, {erlang, set_cookie, 1}, {erlang, set_cookie, 2},
     {erlang, halt, 0}, {erlang, halt, 1}, {erlang, halt, 2}].

%% @doc The guard in the native wire form (a blacklist that raises).
-spec native_spec() -> tuple().
native_spec() ->
    Rules = [{M, '_', '_', default} || M <- modules()] ++
            [{M, F, A, default} || {M, F, A} <- functions()],
    {blacklist, false, true, error, Rules}.
