%% @doc What kind of call sandboxed code makes, before any policy check:
%% calls the handler carries out itself (`apply', `make_fun'), calls a
%% caller-mode run may never make, calls into prepared code or the Elixir
%% compiler, and calls compiled code may make directly once allowed.
-module(seccomp_sandbox_calls).

-include("seccomp_sandbox.hrl").

-export([direct/3, direct_but_dispatch/3, ordinary/3, refused_here/4, elixir_internal/1,
         elixir_helpers/0]).

%% @doc Whether compiled code may call `M:F/A' directly once the policy
%% allows it: true when the handler would do nothing but call it.
-spec direct(module(), atom(), arity()) -> boolean().
direct(M, F, A) ->
    ordinary(M, F, A) andalso seccomp_profiles:kind(M, F, A) =:= plain
        andalso not seccomp_flatteners:member(M, F, A)
        andalso not seccomp_profiles:compares_terms(M, F)
        andalso not seccomp_opaque:member(M, F, A)
        andalso not seccomp_reach:scans_atoms(M)
        andalso not lists:any(fun(G) -> seccomp_reach:member(G, M, F, A) end, seccomp_reach:groups()).

%% @doc Whether the handler's only work for `M:F/A', once allowed, is the
%% forged-struct scan of `seccomp_sandbox:dispatch/4' (a function that can
%% write the VM's shared state is refused there).
-spec direct_but_dispatch(module(), atom(), arity()) -> boolean().
direct_but_dispatch(M, F, A) ->
    ordinary(M, F, A) andalso seccomp_profiles:kind(M, F, A) =:= dispatch
        andalso not lists:any(fun(G) -> seccomp_reach:member(G, M, F, A) end, seccomp_reach:refused_groups()).

%% @doc Whether `M:F/A' is neither carried out by the handler itself, nor
%% refused in caller mode, nor a call into prepared code or the compiler.
-spec ordinary(module(), atom(), arity()) -> boolean().
ordinary(M, F, A) ->
    not special_call(M, F, A) andalso not caller_forbidden(M, F, A)
        andalso not seccomp_slot_names:is_slot(M) andalso not elixir_internal(M).

special_call(M, apply, A) when M =:= erlang; M =:= 'Elixir.Kernel' -> A =:= 2 orelse A =:= 3;
special_call(erlang, make_fun, 3) -> true;
special_call(erlang, process_flag, _A) -> true;
special_call(M, register, 2) when M =:= erlang; M =:= 'Elixir.Process' -> true;
special_call(M, group_leader, 2) when M =:= erlang; M =:= 'Elixir.Process' -> true;
special_call(erlang, garbage_collect, A) when A =:= 1; A =:= 2 -> true;
special_call(erlang, F, A) -> seccomp_introspection:judged(F, A) orelse seccomp_sandbox_timers:timer(erlang, F, A);
special_call('Elixir.Process', flag, _A) -> true;
special_call('Elixir.Function', capture, 3) -> true;
special_call(M, F, A) when M =:= timer; M =:= 'Elixir.Process', F =:= send_after ->
    seccomp_sandbox_timers:timer(M, F, A);
%% The host's state (`seccomp_sandbox_state').
special_call(M, _F, _A) -> seccomp_sandbox_state:module(M).

%% What would change the process that runs caller-mode code.
caller_forbidden(erlang, F, _A) ->
    lists:member(F, [get, put, erase, get_keys, process_flag, link, unlink, monitor, demonitor,
                     register, unregister, group_leader, spawn_link, spawn_monitor, spawn_opt,
                     alias, unalias,
                     send_after, start_timer, cancel_timer, process_info, garbage_collect,
                     hibernate, suspend_process, resume_process]);
caller_forbidden('Elixir.Process', _F, _A) -> true;
caller_forbidden('Elixir.Kernel', F, _A) -> lists:member(F, [spawn_link, spawn_monitor]);
caller_forbidden(_M, _F, _A) -> false.

%% @doc Whether the context refuses `M:F/A' whatever the policy: prepared
%% code must not be entered with a forged context, and a caller-mode run
%% must not change the caller's process.
-spec refused_here(module(), atom(), arity(), seccomp_sandbox_ctx:ctx()) -> boolean().
refused_here(M, F, A, #ctx{tab = caller}) -> caller_forbidden(M, F, A) orelse seccomp_slot_names:is_slot(M);
refused_here(M, _F, _A, _Ctx) -> seccomp_slot_names:is_slot(M).

%% @doc Whether `M' is one of the Elixir compiler's own modules (`elixir',
%% `elixir_*': the `elixir' application's modules outside the `Elixir.'
%% namespace). Newer Elixir compiles some user code to calls of them.
-spec elixir_internal(module()) -> boolean().
elixir_internal(M) ->
    Key = {?MODULE, elixir_internal},
    Internal = case persistent_term:get(Key, undefined) of
                   undefined ->
                       _ = application:load(elixir),
                       Mods = case application:get_key(elixir, modules) of
                                  {ok, Ms} -> Ms;
                                  undefined -> []
                              end,
                       Set = maps:from_list([{X, true} || X <- Mods,
                                                          not lists:prefix("Elixir.", atom_to_list(X))]),
                       persistent_term:put(Key, Set),
                       Set;
                   Set ->
                       Set
               end,
    is_map_key(M, Internal).

%% @doc The compiler helpers the handler carries out itself. A call of any
%% other function of the compiler's modules is refused, whatever the policy:
%% they run code (`apply') on their own.
-spec elixir_helpers() -> [mfa()].
elixir_helpers() ->
    [{elixir_erl_pass, no_parens_remote, 2}, {elixir_erl_pass, parens_map_field, 2}].
