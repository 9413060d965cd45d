%% @doc The one check: every mediated call of a process passes here.
%%
%% {@link apply/3} checks a call against the caller's layers and the guard,
%% makes sure the caller's children will inherit (the tracer, see
%% `seccomp_process'), checks every fun the call carries, and performs it
%% with {@link call/3}. Calls that would have another process act for the
%% caller (a supervisor starting a child, a remote node, a timer) are routed
%% by the enforcement point that declares them: a module of this
%% application with `-seccomp_routes([{M, F | '_', Arity | '_'}])' and a
%% `route(M, F, Args)' function. The table is built from the modules'
%% attributes, so the core knows no enforcement point by name.
-module(seccomp_route).

-export([apply/3, call/3, check/1, mediate/1, routes/0]).
-compile({no_auto_import, [apply/3]}).

-define(ROUTES, {?MODULE, routes}).

%% @doc Apply `M:F(Args...)' if the caller's layers allow it (see {@link seccomp:apply/3}).
-spec apply(module(), atom(), [term()]) -> term().
apply(M, F, Args) when is_atom(M), is_atom(F), is_list(Args) ->
    Arity = arity(M, F, Args),
    case seccomp_nif:check(M, F, Arity) of
        allow -> checked(M, F, Args);
        {deny, Action} ->
            seccomp_violation:handle(Action, {M, F, Arity}, fun() -> checked(M, F, Args) end)
    end;
apply(M, F, Args) ->
    erlang:error({badarg, {M, F, Args}}).

%% A proper list of at most 255 arguments (what the VM can call).
arity(M, F, Args) ->
    try length(Args) of
        N when N =< 255 -> N;
        _ -> erlang:error({badarg, {M, F, Args}})
    catch
        error:badarg -> erlang:error({badarg, {M, F, Args}})
    end.

checked(M, F, Args) ->
    case seccomp_nif:is_restricted(self()) of
        true ->
            ok = seccomp_process:ensure_traced(),
            ok = seccomp_sensitive:check({M, F, length(Args)}),
            ok = no_spawn({M, F, length(Args)}),
            call(M, F, mediate(Args));
        false ->
            call(M, F, Args)
    end.

%% `no_spawn': a function that can start a process (the spawn BIFs, and
%% every function from which a chain of calls reaches one,
%% `seccomp_spawners') is checked as a spawn. Until the set is known (the
%% first seconds of the VM) the call waits for it.
no_spawn({M, F, A} = MFA) ->
    case seccomp_spawners:status(M, F, A) of
        true -> _ = seccomp_violation:spawn_ticket(MFA), ok;
        false -> ok;
        unknown -> ok = seccomp_spawners:ensure(), no_spawn(MFA)
    end.

%% @doc Check an `{M, F, Arity}' as a call of the caller: `ok', or the
%% violation's action is carried out.
-spec check(mfa()) -> ok.
check(MFA) -> seccomp_args:check_call(MFA).

%% @doc For a restricted caller: check what `Args' name (see
%% `seccomp_args') and hand back the arguments with every external fun
%% replaced by one that checks each call it makes, in whichever restricted
%% process calls it (an unrestricted one is refused). Unchanged otherwise.
-spec mediate(term()) -> term().
mediate(Args) ->
    case seccomp_nif:is_restricted(self()) of
        true ->
            case seccomp_args:check(Args) of
                funs -> checking(Args);
                plain -> Args
            end;
        false -> Args
    end.

checking(T) when is_function(T) ->
    case erlang:fun_info(T, type) of
        {type, external} -> checking_fun(T);
        {type, local} -> T
    end;
checking([H | Tl]) -> [checking(H) | checking(Tl)];
checking(T) when is_tuple(T) -> list_to_tuple(checking(tuple_to_list(T)));
checking(T) when is_map(T) -> maps:from_list(checking(maps:to_list(T)));
checking(T) -> T.

checking_fun(Fun) ->
    {module, M} = erlang:fun_info(Fun, module),
    {name, F} = erlang:fun_info(Fun, name),
    case erlang:fun_info(Fun, arity) of
        {arity, 0} -> fun() -> checked_call(M, F, []) end;
        {arity, 1} -> fun(A) -> checked_call(M, F, [A]) end;
        {arity, 2} -> fun(A, B) -> checked_call(M, F, [A, B]) end;
        {arity, 3} -> fun(A, B, C) -> checked_call(M, F, [A, B, C]) end;
        {arity, 4} -> fun(A, B, C, D) -> checked_call(M, F, [A, B, C, D]) end;
        {arity, 5} -> fun(A, B, C, D, E) -> checked_call(M, F, [A, B, C, D, E]) end;
        {arity, 6} -> fun(A, B, C, D, E, G) -> checked_call(M, F, [A, B, C, D, E, G]) end;
        {arity, N} -> seccomp_violation:refuse({M, F, N})
    end.

checked_call(M, F, Args) ->
    case seccomp_nif:is_restricted(self()) of
        true -> apply(M, F, Args);
        false -> seccomp_violation:refuse({M, F, length(Args)})
    end.

%% @doc Perform an allowed call: `apply' is checked like the call it makes,
%% routed calls go to their enforcement point, the rest run as they are.
-spec call(module(), atom(), [term()]) -> term().
call(M, apply, [Fun, Args]) when M =:= erlang; M =:= 'Elixir.Kernel' ->
    apply_fun(Fun, Args);
call(M, apply, [M2, F2, A2]) when M =:= erlang; M =:= 'Elixir.Kernel' ->
    apply(M2, F2, A2);
call(M, F, Args) ->
    case route(M, F, length(Args)) of
        none -> erlang:apply(M, F, Args);
        Point -> Point:route(M, F, Args)
    end.

apply_fun(Fun, Args) when is_function(Fun), is_list(Args) ->
    case erlang:fun_info(Fun, type) of
        {type, external} ->
            {module, M} = erlang:fun_info(Fun, module),
            {name, F} = erlang:fun_info(Fun, name),
            apply(M, F, Args);
        {type, local} ->
            ok = case seccomp_nif:is_restricted(self()) of
                     true -> seccomp_args:check_fun(Fun);
                     false -> ok
                 end,
            erlang:apply(Fun, Args)
    end;
apply_fun(Fun, Args) ->
    erlang:apply(Fun, Args).

%% Most calls name a module nothing routes: one lookup answers them.
route(M, F, A) ->
    case routes() of
        #{M := #{F := #{A := Point}}} -> Point;
        #{M := #{F := #{'_' := Point}}} -> Point;
        #{M := #{'_' := #{'_' := Point}}} -> Point;
        _ -> none
    end.

%% @doc The routed calls and their enforcement points, from the attributes
%% of the application's modules: `#{M => #{F => #{Arity => Point}}}' with
%% `'_'' for any function or arity.
-spec routes() -> #{module() => #{atom() => #{arity() | '_' => module()}}}.
routes() ->
    case persistent_term:get(?ROUTES, undefined) of
        undefined ->
            Add = fun({{M, F, A}, Point}, Acc) ->
                          Fs = maps:get(M, Acc, #{}),
                          As = maps:get(F, Fs, #{}),
                          Acc#{M => Fs#{F => As#{A => Point}}}
                  end,
            Routes = lists:foldl(Add, #{}, [{Pattern, Mod} || Mod <- seccomp_guard:app_modules(),
                                                              Pattern <- declared(Mod)]),
            persistent_term:put(?ROUTES, Routes),
            Routes;
        Routes ->
            Routes
    end.

declared(Mod) ->
    case code:ensure_loaded(Mod) of
        {module, Mod} -> lists:append(proplists:get_all_values(seccomp_routes, Mod:module_info(attributes)));
        _ -> []
    end.
