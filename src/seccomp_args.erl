%% @doc What the arguments of a restricted caller's call name, checked
%% before the call runs.
%%
%% Data can name code and processes. A function that is handed a module and
%% a function name (`erlang:spawn(M, F, A)', `timer:tc', `proc_lib', an
%% `Agent' or `Task' MFA, a child spec's start, `{mod, {M, Args}}'...) will
%% apply them, so every module-function pair the arguments hold (side by side
%% in the argument list, a list or a tuple, at any depth) is checked like a
%% call of the caller, for every arity the module exports under that name.
%% An external fun (`fun M:F/A') is data too: it is checked as that call
%% (and `seccomp_route' hands the callee a fun that checks each call it
%% makes); a local fun is compiled code and only its module is checked
%% against the guard.
%%
%% A process named by the arguments (a pid, a registered name, a
%% `{global, Name}', a `{via, global | Registry, Name}') is out of reach when it is one of the node's system
%% processes or this library's own: a registered process whose application
%% is part of OTP, Elixir or this library (or that belongs to no
%% application, like `init'), and any process this library started. Asking
%% such a process to act (a message, an exit signal, a start_child, a
%% `sys' request, a handler) is how a restricted process would get an
%% unrestricted one to run code for it, or switch the library off.
-module(seccomp_args).

-export([check/1, check_call/1, check_fun/1, is_protected/1, is_library_process/1,
         library_names/0, is_module/1, is_module_on_path/1, warm/0]).

%% Depth to which nested terms are walked; deeper terms are refused.
-define(MAX_DEPTH, 64).
-define(APPS, {?MODULE, system_apps}).

%% @doc Check every code and process name in `Args' (see the module doc):
%% the violation's action is carried out, or the answer says whether `Args'
%% hold an external fun (`funs') or not (`plain').
-spec check(term()) -> funs | plain.
check(Args) ->
    case walk(Args, 0) of
        true -> funs;
        false -> plain
    end.

%% @doc Check `{M, F, Arity}' as a call of the caller, the guard and the
%% functions that change the node included (see `seccomp_sensitive').
-spec check_call(mfa()) -> ok.
check_call({M, F, A} = MFA) ->
    ok = case seccomp_nif:check(M, F, A) of
             allow -> ok;
             {deny, Action} -> seccomp_violation:handle(Action, MFA, fun() -> ok end)
         end,
    seccomp_sensitive:check(MFA).

%% @doc An external fun is checked as the call it names; a local fun's
%% module against the guard (its code runs when it is called).
-spec check_fun(function()) -> ok.
check_fun(Fun) ->
    {module, M} = erlang:fun_info(Fun, module),
    {name, F} = erlang:fun_info(Fun, name),
    {arity, A} = erlang:fun_info(Fun, arity),
    case erlang:fun_info(Fun, type) of
        {type, external} -> check_call({M, F, A});
        {type, local} when M =:= seccomp_route -> ok; % a checking fun made by seccomp_route
        %% A sandbox's checking fun, or its own fun bounding what it returns.
        {type, local} when M =:= seccomp_sandbox_funs -> ok;
        %% An interpreted closure runs under the function handler it was made
        %% with (a sandbox's); a restricted process cannot reach erl_eval to
        %% make one without.
        {type, local} when M =:= erl_eval -> ok;
        {type, local} ->
            case seccomp_nif:check_guard(M, F, A) of
                allow -> ok;
                {deny, Action} -> seccomp_violation:handle(Action, {M, F, A}, fun() -> ok end)
            end
    end.

%% Each walk answers whether it met an external fun.
walk(_T, Depth) when Depth > ?MAX_DEPTH ->
    seccomp_violation:refuse({?MODULE, nesting, ?MAX_DEPTH});
walk(T, _Depth) when is_function(T) ->
    ok = check_fun(T),
    erlang:fun_info(T, type) =:= {type, external};
walk(T, _Depth) when is_pid(T); is_atom(T) -> ok = process(T), false;
walk({global, Name} = T, Depth) ->
    ok = process({global, Name}),
    sequence(tuple_to_list(T), Depth, false);
walk({via, Mod, Name} = T, Depth) when Mod =:= global; Mod =:= 'Elixir.Registry' ->
    ok = process(try Mod:whereis_name(Name) catch _:_ -> undefined end),
    sequence(tuple_to_list(T), Depth, false);
walk(T, Depth) when is_tuple(T) -> sequence(tuple_to_list(T), Depth, false);
walk(T, Depth) when is_list(T) -> sequence(T, Depth, false);
walk(T, Depth) when is_map(T) -> walk(maps:to_list(T), Depth + 1);
walk(_, _) -> false.

%% Elements side by side: each is walked, and each pair of atoms that names
%% a module and a function it exports is checked as a call.
sequence([], _Depth, Funs) -> Funs;
sequence([H | T], Depth, Funs) ->
    HasFun = walk(H, Depth + 1),
    ok = case T of
             [F | _] when is_atom(H), is_atom(F) -> named(H, F);
             _ -> ok
         end,
    sequence(T, Depth, Funs orelse HasFun);
sequence(Improper, Depth, Funs) -> walk(Improper, Depth + 1) orelse Funs.

%% A restricted child spec's start (`seccomp:child_spec/2') only adds
%% layers; the start it wraps is checked as the walk reaches it.
named(seccomp_supervisor, start_restricted) -> ok;
named(M, F) ->
    lists:foreach(fun(A) -> ok = check_call({M, F, A}) end, arities(M, F)).

%% The arities under which module `M' exports `F' (none when `M' is no module).
arities(M, F) ->
    case erlang:module_loaded(M) orelse (is_module_on_path(M) andalso
                                         code:ensure_loaded(M) =:= {module, M}) of
        true -> [A || {F2, A} <- M:module_info(exports), F2 =:= F];
        false -> []
    end.

%% @doc Whether `M' is a module: loaded, or on the code path (read once).
-spec is_module(atom()) -> boolean().
is_module(M) -> erlang:module_loaded(M) orelse is_module_on_path(M).

%% @doc Read what the checks read once per VM (module names on the code
%% path, the library's names) in the calling process: a sandbox's own
%% process, under its heap limit, never does.
-spec warm() -> ok.
warm() ->
    _ = is_module_on_path(?MODULE),
    _ = library_names(),
    ok.

%% @doc Whether `M' is the name of a module on the code path, loaded or
%% not (the names are read once, as binaries: no atom is made).
-spec is_module_on_path(atom()) -> boolean().
is_module_on_path(M) ->
    Names = case persistent_term:get({?MODULE, path_modules}, undefined) of
                undefined ->
                    Set = maps:from_list([{list_to_binary(filename:rootname(B)), true}
                                          || Dir <- code:get_path(),
                                             B <- filelib:wildcard("*.beam", Dir)]),
                    persistent_term:put({?MODULE, path_modules}, Set),
                    Set;
                Set -> Set
            end,
    is_map_key(atom_to_binary(M), Names).

process(Dest) ->
    case is_protected(Dest) of
        true -> seccomp_violation:refuse({?MODULE, protected_process, 1});
        false -> ok
    end.

%% @doc Whether a process (pid, registered name, `{global, Name}') is a
%% system or library process out of reach of restricted callers. The
%% library's names are protected even while no process holds them (nobody
%% may take them over).
-spec is_protected(term()) -> boolean().
is_protected(Name) when is_atom(Name) ->
    %% A bare name may be a global one too (`global:send(Name, Msg)').
    lists:member(Name, library_names()) orelse is_protected_pid(whereis(Name))
        orelse is_protected_pid(global:whereis_name(Name));
is_protected({global, Name}) ->
    is_protected_pid(global:whereis_name(Name));
is_protected(Pid) ->
    is_protected_pid(Pid).

is_protected_pid(Pid) when is_pid(Pid), node(Pid) =:= node(), Pid =/= self() ->
    is_library_process(Pid) orelse is_system_process(Pid);
is_protected_pid(_) ->
    false.

%% @doc The names this library's processes register (from its supervisor).
-spec library_names() -> [atom()].
library_names() ->
    case persistent_term:get({?MODULE, library_names}, undefined) of
        undefined ->
            {ok, {_, Children}} = beam_seccomp_sup:init([]),
            Names = [beam_seccomp_sup | [Id || #{id := Id} <- Children, is_atom(Id)]],
            persistent_term:put({?MODULE, library_names}, Names),
            Names;
        Names -> Names
    end.

%% @doc A process this library started: its initial call (as `proc_lib'
%% records it, else the spawn's) names one of the library's modules, and it
%% is not restricted (a restricted one is a caller's child, started through
%% the library's spawn functions).
-spec is_library_process(pid()) -> boolean().
is_library_process(Pid) ->
    Mods = seccomp_guard:app_modules(),
    lists:any(fun(M) -> lists:member(M, Mods) end, started_by(Pid))
        andalso not seccomp_nif:is_restricted(Pid).

%% The modules in a process's initial call (a supervisor's names its callback module too).
started_by(Pid) ->
    Calls = case process_info(Pid, [dictionary, initial_call]) of
                [{dictionary, D}, {initial_call, I}] -> [proplists:get_value('$initial_call', D), I];
                undefined -> []
            end,
    lists:append([[M | [F || is_atom(F)]] || {M, F, _} <- Calls]).

%% A registered process of OTP, Elixir or no application at all.
is_system_process(Pid) ->
    case process_info(Pid, registered_name) of
        {registered_name, Name} when is_atom(Name) ->
            case application:get_application(Pid) of
                undefined -> true;
                {ok, App} -> is_system_app(App)
            end;
        _ ->
            false
    end.

%% An application installed with OTP or Elixir, or this library.
is_system_app(beam_seccomp) -> true;
is_system_app(App) ->
    Known = persistent_term:get(?APPS, #{}),
    case Known of
        #{App := Is} -> Is;
        _ ->
            Is = case code:lib_dir(App) of
                     {error, _} -> true; % no code of its own: fail closed
                     Dir -> lists:any(fun(Root) -> lists:prefix(Root, Dir) end, system_roots())
                 end,
            persistent_term:put(?APPS, Known#{App => Is}),
            Is
    end.

system_roots() ->
    Elixir = case code:lib_dir(elixir) of
                 {error, _} -> [];
                 Dir -> [filename:dirname(Dir)]
             end,
    [code:root_dir() | Elixir].
