%% @doc Work a server process does on its client's behalf, as calls of the
%% call graph (`seccomp_callgraph').
%%
%% `xref' sees `dets:insert/2' send a message, not the table's process write
%% the file; it sees `dets_server:open_file/2' call `gen_server:call/3', not
%% `dets_server:handle_call/3' run: the module a process runs is data (a
%% behaviour's callback module, a `proc_lib' start function). The OTP
%% pattern is a module that starts processes running its own code
%% (`gen_server:start_link({local, ?MODULE}, ?MODULE, ...)',
%% `proc_lib:spawn_link(?MODULE, init, ...)') and whose functions then send
%% them requests. So: in a module that calls a behaviour's start or spawn
%% function, every function that sends a message or calls into a behaviour
%% module (`call', `cast', `start'...) reaches the module's callbacks: its
%% exported functions named as a behaviour's callbacks (with
%% `callback_mode/0', every exported function of arity 3: state functions),
%% and `init': from every such function where the module has no other
%% callback (a `proc_lib' process's entry, from which its loop serves each
%% request), else from those that start a process. An over-approximation:
%% a module that starts another module's processes gets edges it does not
%% need.
-module(seccomp_served).

-export([edges/0, behaviour/1]).

-define(KEY, {?MODULE, edges}).
%% Modules that run a process's code for a module they are given.
-define(BEHAVIOURS,
        [gen, gen_server, gen_statem, gen_event, gen_fsm, proc_lib, supervisor, supervisor_bridge,
         'Elixir.GenServer', 'Elixir.Supervisor', 'Elixir.Agent', 'Elixir.Task',
         'Elixir.Task.Supervisor', 'Elixir.DynamicSupervisor', 'Elixir.GenEvent']).
%% The built-ins that send a request to a process.
-define(SENDS, [{erlang, send, 2}, {erlang, send, 3}, {erlang, '!', 2},
                {erlang, send_nosuspend, 2}, {erlang, send_nosuspend, 3}]).

%% @doc The calls servers make for their clients: callee to callers, as
%% in the graph. Derived once per VM; empty where there is no graph.
-spec edges() -> #{mfa() => [mfa()]}.
edges() ->
    case persistent_term:get(?KEY, undefined) of
        undefined ->
            Edges = case seccomp_callgraph:graph() of
                        error -> #{};
                        G -> derive(G)
                    end,
            persistent_term:put(?KEY, Edges),
            Edges;
        Edges ->
            Edges
    end.

derive(#{callers := Callers, exports := Exports}) ->
    Behaviour = maps:from_keys(?BEHAVIOURS, true),
    Starters = [MFA || {M, F, _} = MFA <- maps:keys(Callers), is_map_key(M, Behaviour), starts(F)],
    Starting = lists:usort([C || S <- Starters, {M, _, _} = C <- maps:get(S, Callers, []),
                                 not is_map_key(M, Behaviour)]),
    Serving = maps:from_keys([M || {M, _, _} <- Starting], true),
    Requests = [MFA || {M, _, _} = MFA <- maps:keys(Callers), is_map_key(M, Behaviour)] ++ ?SENDS,
    %% What the behaviour modules call themselves is how they address a
    %% process (`global:send/2' for `{global, Name}'), not a request of
    %% the module's own server.
    Machinery = fun(C) -> lists:any(fun({M, _, _}) -> is_map_key(M, Behaviour) end, maps:get(C, Callers, [])) end,
    Clients = lists:usort([C || R <- Requests, {M, _, _} = C <- maps:get(R, Callers, []),
                                is_map_key(M, Serving), not Machinery(C)]),
    ByModule = maps:groups_from_list(fun({M, _, _}) -> M end, Clients),
    ExportsOf = maps:groups_from_list(fun({M, _, _}) -> M end, fun({_, F, A}) -> {F, A} end,
                                      [E || {M, _, _} = E <- maps:keys(Exports), is_map_key(M, ByModule)]),
    Universe = callbacks(),
    Targets = maps:map(fun(_M, Fs) -> targets(Fs, Universe) end, ExportsOf),
    StartingSet = maps:from_keys(Starting, true),
    Edges = [{{M, F, A}, C} || {M, _, _} = C <- Clients, {F, A} <- maps:get(M, Targets, []),
                               {M, F, A} =/= C,
                               F =/= init orelse is_map_key(C, StartingSet) orelse plain(M, Targets)],
    maps:groups_from_list(fun({To, _}) -> To end, fun({_, From}) -> From end, Edges).

%% The callbacks among a module's exports: a behaviour's, state functions
%% (arity 3) where it exports `callback_mode/0', and `init'.
targets(Exports, Universe) ->
    %% (A client's request never runs these.)
    Unreached = [code_change, format_status],
    StateFunctions = lists:member({callback_mode, 0}, Exports),
    [{F, A} || {F, A} <- Exports, not lists:member(F, Unreached),
               F =:= init orelse is_map_key({F, A}, Universe) orelse (StateFunctions andalso A =:= 3)].

%% A process started by `proc_lib' without a behaviour: its `init' is the
%% entry of the loop that serves each request. A behaviour's `init' runs
%% only at start.
plain(M, Targets) ->
    lists:all(fun({F, _}) -> F =:= init end, maps:get(M, Targets)).

%% Every callback of the behaviour modules.
callbacks() ->
    maps:from_keys(lists:append([behaviour_callbacks(B) || B <- ?BEHAVIOURS]), true).

behaviour_callbacks(B) ->
    try B:behaviour_info(callbacks) of
        Callbacks when is_list(Callbacks) -> Callbacks;
        _ -> []
    catch
        _:_ -> []
    end.

%% @doc Whether `M' is one of the modules that run a process's code for a
%% module they are given (`gen_server', `proc_lib', `GenServer'...).
-spec behaviour(module()) -> boolean().
behaviour(M) -> lists:member(M, ?BEHAVIOURS).

starts(F) ->
    Name = atom_to_list(F),
    lists:prefix("start", Name) orelse lists:prefix("spawn", Name).
