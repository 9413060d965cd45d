%% @doc What no restricted process may reach through a mediated entry point,
%% whatever its own policy says: the library's control surface, and anything
%% that loads code or evaluates code without our handlers.
-module(seccomp_guard).

-export([modules/0, functions/0, native_spec/0]).

%% @doc Modules that are refused as a whole.
-spec modules() -> [module()].
modules() ->
    [%% our own control surface
     seccomp, seccomp_nif, seccomp_policy, seccomp_guard, seccomp_violation,
     seccomp_events, seccomp_eval, seccomp_rewrite, seccomp_profiles, seccomp_sup,
     seccomp_shell, seccomp_rpc, seccomp_dist, seccomp_sandbox, seccomp_source, seccomp_elixir,
     seccomp_capture, seccomp_compile, seccomp_prepare, seccomp_prepared, seccomp_pool,
     'Elixir.Seccomp', 'Elixir.Seccomp.Policy', 'Elixir.Seccomp.Eval',
     'Elixir.Seccomp.Supervisor',
     %% code loading and evaluation that would bypass the checks
     code, code_server, erl_prim_loader, erl_ddll, erts_code_purger, compile,
     erl_eval, erl_lint, elixir, elixir_compiler, elixir_module, elixir_def,
     'Elixir.Code', 'Elixir.Module', 'Elixir.Kernel.ErrorHandler',
     %% ways to change what other processes or the runtime do
     erts_internal, erl_tracer, dbg, sys, persistent_term].

%% @doc Single BIFs that load code or NIFs.
-spec functions() -> [mfa()].
functions() ->
    [{erlang, load_nif, 2}, {erlang, load_module, 2}, {erlang, purge_module, 1},
     {erlang, delete_module, 1}, {erlang, prepare_loading, 2}, {erlang, finish_loading, 1},
     {erlang, check_process_code, 2}, {erlang, check_process_code, 3},
     {erlang, trace, 3}, {erlang, trace_pattern, 2}, {erlang, trace_pattern, 3},
     {erlang, system_flag, 2}, {erlang, set_cookie, 2}, {erlang, halt, 0}, {erlang, halt, 1},
     {erlang, halt, 2}].

%% @doc The guard in the native wire form (a blacklist that raises).
-spec native_spec() -> tuple().
native_spec() ->
    Rules = [{M, '_', '_', default} || M <- modules()] ++
            [{M, F, A, default} || {M, F, A} <- functions()],
    {blacklist, false, true, error, Rules}.
