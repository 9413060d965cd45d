%% EUnit tests of mediation by construction: no unrestricted process, no
%% unchecked call and no hang through the core API and supervisors, under a
%% blacklist that names only `os' (none of the vectors is named).
-module(seccomp_mediation_tests).
-include_lib("eunit/include/eunit.hrl").

%% Scenarios run in a VM of their own (peer), and callbacks.
-export([elixir_path/0, deadlock_spawn/0, deadlock_eval/0, deadlock_start_child/0, deadlock_adopt_twice/0,
         every_spawner/0, spawners/0, arg_lists/4, probe/2, init/1, first_instruction/1, first_instruction_ack/1, report_start/2]).

-include("caught.hrl").

-define(NO_OS, #{mode => blacklist, rules => [os]}).
%% The core and its enforcement points.
-define(CORE, [seccomp, seccomp_route, seccomp_process, seccomp_delegate, seccomp_supervisor,
               seccomp_rpc, seccomp_policy, seccomp_nif, seccomp_events, seccomp_violation,
               seccomp_guard, seccomp_capabilities, beam_seccomp_app, beam_seccomp_sup]).

setup() -> {ok, _} = application:ensure_all_started(beam_seccomp), ok.

%% Run Fun in a fresh process and return its result.
in_proc(Fun) ->
    {Pid, Ref} = erlang:spawn_monitor(fun() -> exit({result, caught(Fun)}) end),
    receive {'DOWN', Ref, process, Pid, {result, R}} -> R;
            {'DOWN', Ref, process, Pid, Other} -> {died, Other}
    after 20000 -> exit(Pid, kill), timeout
    end.

restricted(Fun) -> in_proc(fun() -> ok = seccomp:restrict(?NO_OS), Fun() end).

%% supervisor callback for the tests' own supervisors.
init({sup, Flags, Children}) -> {ok, {Flags, Children}}.

%%% The deadlock paths, each in a VM of its own -------------------------------------

%% A scenario in a fresh VM; a hang is reported as `timeout' and the VM killed.
%% (A fresh VM's first `eval' may derive the call graph: seconds.)
in_own_vm(Scenario) -> in_own_vm(Scenario, 60000).

in_own_vm(Scenario, Timeout) ->
    Paths = lists:append([["-pa", P] || P <- code:get_path() ++ elixir_path()]),
    %% The control connection is TCP: what the scenario prints cannot disturb it.
    {ok, Peer, _} = peer:start_link(#{connection => 0, args => Paths}),
    OsPid = peer:call(Peer, os, getpid, []),
    try peer:call(Peer, ?MODULE, Scenario, [], Timeout)
    catch exit:{timeout, _} -> timeout
    after
        os:cmd("kill -9 " ++ OsPid),
        caught(fun() -> peer:stop(Peer) end)
    end.

%% (Each with a timeout of its own: EUnit's default of 5 s applies to each
%% test of a group.)
deadlocks_test_() ->
    [{timeout, 90, ?_assertEqual({true, 1}, in_own_vm(deadlock_spawn))},
     {timeout, 90, ?_assertMatch({ok, 2, _}, in_own_vm(deadlock_eval))},
     {timeout, 90, ?_assertEqual({true, 2}, in_own_vm(deadlock_start_child))},
     {timeout, 90, ?_assertEqual({ok, 1}, in_own_vm(deadlock_adopt_twice))}].

started_vm() -> {ok, _} = application:ensure_all_started(beam_seccomp).

%% restrict + inherit_everywhere(self()) + seccomp:spawn/1.
deadlock_spawn() ->
    started_vm(),
    ok = seccomp:restrict(?NO_OS),
    ok = seccomp:inherit_everywhere(self()),
    Self = self(),
    seccomp:spawn(fun() -> Self ! {child, seccomp:is_restricted(self()),
                                   length(maps:get(layers, seccomp:status(self())))} end),
    receive {child, R, N} -> {R, N} after 5000 -> no_reply end.

deadlock_eval() ->
    started_vm(),
    ok = seccomp:restrict(?NO_OS),
    ok = seccomp:inherit_everywhere(self()),
    seccomp_eval:eval("1 + 1.", #{}).

%% A restricted caller's start_child with a restricted child spec.
deadlock_start_child() ->
    started_vm(),
    {ok, Sup} = supervisor:start_link(?MODULE, {sup, #{}, []}),
    ok = seccomp:restrict(?NO_OS),
    Spec = seccomp:child_spec(#{id => w, start => {gen_event, start_link, []}},
                              #{mode => blacklist, rules => [file]}),
    {ok, Pid} = seccomp:start_child(Sup, Spec),
    {seccomp:is_restricted(Pid), length(maps:get(layers, seccomp:status(Pid)))}.

deadlock_adopt_twice() ->
    started_vm(),
    {ok, P} = seccomp:policy(?NO_OS),
    T = seccomp_nif:policy_ticket(seccomp_policy:native(P)),
    ok = seccomp_nif:adopt(T),
    ok = seccomp_nif:adopt(T),
    {ok, length(maps:get(layers, seccomp:status(self())))}.

%% A scenario in a VM started as a plain OS process (nothing the scenario
%% does can reach this VM or a control connection); `timeout' when it hangs.
in_os_process(Scenario, Seconds) ->
    Out = filename:join(os:getenv("TMPDIR", "/tmp"),
                        "seccomp_scenario_" ++ integer_to_list(erlang:unique_integer([positive]))),
    Paths = lists:append([[" -pa '", P, "'"] || P <- code:get_path() ++ elixir_path()]),
    Eval = io_lib:format("R = (catch ~p:~p()), ok = file:write_file(\"~ts\", term_to_binary(R)), halt().",
                         [?MODULE, Scenario, Out]),
    Log = Out ++ ".log",
    _ = os:cmd(lists:flatten(["timeout -s KILL ", integer_to_list(Seconds), " erl -noshell", Paths,
                              " -eval '", Eval, "' >", Log, " 2>&1 </dev/null"])),
    case file:read_file(Out) of
        {ok, Bin} -> file:delete(Out), file:delete(Log), binary_to_term(Bin);
        {error, _} -> {timeout, Log}
    end.

%% Elixir's code, when Elixir is installed but not on this VM's path (rebar3).
elixir_path() ->
    case {code:which('Elixir.Kernel'), os:find_executable("elixir")} of
        {non_existing, false} -> [];
        {non_existing, _} ->
            Dir = string:trim(os:cmd("elixir -e 'IO.write(:code.lib_dir(:elixir))' 2>/dev/null")),
            [filename:join(Dir, "ebin") || filelib:is_dir(filename:join(Dir, "ebin"))];
        _ -> []
    end.

%%% Completeness: every installed function that can reach a spawn BIF -------------------

%% xref over kernel, stdlib and Elixir finds every exported function from
%% which a call path reaches an `erlang:spawn*' BIF. Each is called through
%% seccomp:apply by a process restricted by a blacklist that names only
%% `os', with argument lists that hand it a probe as a fun or as an
%% `{M, F, A}' in every position; any process that runs the probe reports
%% whether it was restricted at its first instruction. Functions that can
%% reach `erlang:halt' or `init:stop' would end the VM, and those that reach
%% ports or raw sockets would take over or close the VM's own descriptors:
%% they are left out (derived the same way).
every_spawner_test_() ->
    {timeout, 600, fun() ->
        {Candidates, Calls, Probes, Free} = in_os_process(every_spawner, 540),
        ?assert(Candidates > 300),
        ?assert(Calls > Candidates),
        ?assert(Probes > 20),
        ?assertEqual([], Free)
    end}.

every_spawner() ->
    started_vm(),
    logger:set_primary_config(level, none),
    group_leader(spawn(fun sink/0), self()),
    Candidates = spawners(),
    {ok, Policy} = seccomp:policy(?NO_OS),
    Me = self(),
    Calls = [{MFA, Args} || {M, F, A} = MFA <- Candidates, Args <- arg_lists(M, F, A, Me)],
    run_batches(Calls, Policy),
    Reports = drain_probes([]),
    Free = lists:usort([Tag || {Tag, false} <- Reports]),
    {length(Candidates), length(Calls), length(Reports), Free}.

%% An io server that swallows everything the called functions print or read.
sink() ->
    receive
        {io_request, From, Ref, _} -> From ! {io_reply, Ref, {error, enotsup}}, sink();
        _ -> sink()
    end.

%% The probe: report the tag and whether this process is restricted.
probe(Report, Tag) ->
    Report ! {probe, Tag, seccomp:is_restricted(self())}.

arg_lists(M, F, A, Me) ->
    Tag = {M, F, A},
    Fun = fun() -> probe(Me, Tag) end,
    Fun1 = fun(_) -> probe(Me, Tag) end,
    MFA = [?MODULE, probe, [Me, Tag]],
    %% A pid to hand out that is not the collector (a call may link to it, kill it...).
    Bystander = spawn(fun() -> receive after 60000 -> ok end end),
    Fill = [node(), 0, Bystander, []],
    Funs = [lists:duplicate(A, Fun), lists:duplicate(A, Fun1)],
    Placed = [lists:duplicate(I, P) ++ [Fun] ++ lists:duplicate(A - I - 1, [])
              || I <- lists:seq(0, A - 1), P <- Fill],
    WithMFA = [lists:duplicate(I, P) ++ MFA ++ lists:duplicate(A - I - 3, [])
               || A >= 3, I <- lists:seq(0, A - 3), P <- Fill],
    Tuple = [lists:duplicate(I, P) ++ [{?MODULE, probe, [Me, Tag]}] ++ lists:duplicate(A - I - 1, [])
             || I <- lists:seq(0, A - 1), P <- Fill],
    lists:usort(Funs ++ Placed ++ WithMFA ++ Tuple).

run_batches([], _Policy) ->
    ok;
run_batches(Calls, Policy) ->
    {Batch, Rest} = lists:split(min(64, length(Calls)), Calls),
    Pids = [spawn(fun() ->
                          ok = seccomp:restrict(Policy),
                          caught(fun() -> seccomp:apply(M, F, Args) end)
                  end) || {{M, F, _}, Args} <- Batch],
    timer:sleep(150),
    [exit(P, kill) || P <- Pids],
    run_batches(Rest, Policy).

drain_probes(Acc) ->
    receive {probe, Tag, Restricted} -> drain_probes([{Tag, Restricted} | Acc])
    after 1000 -> Acc
    end.

%% Exported functions of kernel, stdlib and Elixir that reach a spawn BIF,
%% without those that reach a VM stop.
spawners() ->
    {ok, X} = xref:start([{xref_mode, functions}]),
    try
        ok = xref:set_default(X, [{warnings, false}, {verbose, false}]),
        Dirs = [filename:join(code:lib_dir(App), "ebin") || App <- [kernel, stdlib]] ++
               [filename:dirname(code:which('Elixir.Kernel')) || code:which('Elixir.Kernel') =/= non_existing],
        [{ok, _} = xref:add_directory(X, D) || D <- Dirs],
        {ok, Edges} = xref:q(X, "E"),
        {ok, Exports} = xref:q(X, "X"),
        Callers = digraph:new(),
        [begin digraph:add_vertex(Callers, A), digraph:add_vertex(Callers, B),
               digraph:add_edge(Callers, B, A) end || {A, B} <- Edges ++ callback_edges(Edges, Exports)],
        Reaching = fun(Pred) -> sets:from_list(digraph_utils:reachable(
                                                 [V || V <- digraph:vertices(Callers), Pred(V)], Callers)) end,
        Spawners = Reaching(fun({erlang, F, _}) -> lists:prefix("spawn", atom_to_list(F)); (_) -> false end),
        Stoppers = Reaching(fun({erlang, halt, _}) -> true;
                               ({init, F, _}) -> lists:member(F, [stop, restart, reboot]);
                               %% Ports and raw sockets take OS descriptors: the
                               %% VM's own terminal, or a closed descriptor,
                               %% ends it (the `ports' class of capabilities).
                               ({erlang, open_port, 2}) -> true;
                               %% The VM's terminal (reached through behaviour callbacks).
                               ({M, _, _}) when M =:= user; M =:= user_sup; M =:= user_drv -> true;
                               ({M, _, _}) when M =:= prim_socket; M =:= socket -> true;
                               (_) -> false end),
        [MFA || MFA <- Exports, sets:is_element(MFA, Spawners), not sets:is_element(MFA, Stoppers)]
    after
        xref:stop(X)
    end.

%% A function that starts a behaviour process of its own module runs that
%% module's callbacks in the new process, which xref does not see as calls
%% (the module is data): it reaches every function its module exports. The
%% behaviour modules themselves start processes for whichever module they
%% are given, so their own start functions get no such edges.
%% `erl_compile_server:start_link/0' halts the VM after ten idle seconds.
callback_edges(Edges, Exports) ->
    Starters = [gen, gen_server, gen_statem, gen_event, proc_lib, supervisor, supervisor_bridge,
                'Elixir.GenServer', 'Elixir.Supervisor'],
    ByModule = maps:groups_from_list(fun({M, _, _}) -> M end, Exports),
    StartingCallers = lists:usort([Caller || {{M, _, _} = Caller, {SM, SF, _}} <- Edges,
                                             not lists:member(M, Starters),
                                             lists:member(SM, Starters),
                                             lists:prefix("start", atom_to_list(SF))]),
    [{Caller, Export} || {M, _, _} = Caller <- StartingCallers,
                         Export <- maps:get(M, ByModule, [])].

%%% Every vector: restricted at the first instruction, or refused ----------------------

%% The first instruction of a started process reports whether it is restricted.
first_instruction(Report) ->
    Report ! {first, self(), seccomp:is_restricted(self())},
    receive stop -> ok after 2000 -> ok end.

report_start(Report, _Extra) ->
    proc_lib:start_link(?MODULE, first_instruction_ack, [Report]).

first_instruction_ack(Report) ->
    Report ! {first, self(), seccomp:is_restricted(self())},
    proc_lib:init_ack({ok, self()}),
    receive stop -> ok after 2000 -> ok end.

%% Call `M:F(Args)' through seccomp:apply in a restricted process; every
%% process that reports its first instruction must have been restricted then.
outcome(M, F, ArgsFun) ->
    Me = self(),
    R = restricted(fun() ->
                           try seccomp:apply(M, F, ArgsFun(Me)) of _ -> started
                           catch error:{seccomp_violation, _} -> refused;
                                 error:{seccomp_inheritance, _} -> refused
                           end
                   end),
    Firsts = collect_firsts([]),
    {R, Firsts}.

collect_firsts(Acc) ->
    receive {first, Pid, Restricted} -> Pid ! stop, collect_firsts([Restricted | Acc])
    after 300 -> Acc
    end.

safe({refused, []}) -> true;
safe({started, [_ | _] = Firsts}) -> lists:all(fun(R) -> R end, Firsts);
safe({started, []}) -> true;
safe(_) -> false.

vectors_test_() ->
    {setup, fun setup/0,
     {timeout, 120,
      [{lists:flatten(io_lib:format("~p:~p", [M, F])),
        fun() -> ?assert(safe(outcome(M, F, Args))) end} || {M, F, Args} <- vectors()]}}.

vectors() ->
    Fun = fun(Me) -> fun() -> first_instruction(Me) end end,
    MFA = fun(Me) -> [?MODULE, first_instruction, [Me]] end,
    [{erlang, spawn, fun(Me) -> [Fun(Me)] end},
     {erlang, spawn, MFA},
     {erlang, spawn_link, fun(Me) -> [Fun(Me)] end},
     {erlang, spawn_monitor, fun(Me) -> [Fun(Me)] end},
     {erlang, spawn_opt, fun(Me) -> [Fun(Me), []] end},
     {erlang, spawn_opt, fun(Me) -> MFA(Me) ++ [[]] end},
     {erlang, spawn_request, fun(Me) -> [Fun(Me)] end},
     {erlang, spawn_request, fun(Me) -> [node(), Fun(Me), []] end},
     {erlang, spawn, fun(Me) -> [node(), Fun(Me)] end},
     {erlang, apply, fun(Me) -> [fun erlang:spawn/1, [Fun(Me)]] end},
     {erlang, apply, fun(Me) -> [erlang, spawn, [Fun(Me)]] end},
     {proc_lib, spawn, fun(Me) -> [Fun(Me)] end},
     {proc_lib, spawn_link, MFA},
     {proc_lib, start, fun(Me) -> [?MODULE, first_instruction_ack, [Me]] end},
     {gen_event, start, fun(_Me) -> [] end},
     {timer, apply_after, fun(Me) -> [0 | MFA(Me)] end},
     {rpc, block_call, fun(Me) -> [node() | MFA(Me)] end},
     {rpc, async_call, fun(Me) -> [node() | MFA(Me)] end},
     {erpc, send_request, fun(Me) -> [node() | MFA(Me)] end},
     {supervisor, start_link, fun(Me) -> [?MODULE, {sup, #{}, [#{id => w, start => {?MODULE, report_start, [Me, x]}, restart => temporary}]}] end}].

%% The fun forms of the timers, where the running OTP has them (27+): the
%% timer server, not the caller, spawns the process that runs the fun, for
%% as long as the caller lives (interval timers).
fun_timers_test_() ->
    {module, timer} = code:ensure_loaded(timer),
    {setup, fun setup/0,
     [{atom_to_list(F) ++ "/" ++ integer_to_list(Arity), fun() -> fun_timer(F, Arity) end}
      || F <- [apply_after, apply_interval, apply_repeatedly], Arity <- [2, 3],
         erlang:function_exported(timer, F, Arity)]}.

fun_timer(F, Arity) ->
    Me = self(),
    Report = fun() -> Me ! {first, self(), seccomp:is_restricted(self())} end,
    Args = case Arity of
               2 -> [20, Report];
               3 -> [20, fun(x) -> Report() end, [x]]
           end,
    ok = restricted(fun() -> {ok, _} = seccomp:apply(timer, F, Args), timer:sleep(100) end),
    Firsts = collect_firsts([]),
    ?assertNotEqual([], Firsts),
    ?assert(lists:all(fun(R) -> R end, Firsts)).

%% Neither the seccomp_route module nor any other module of the application is callable.
guard_is_derived_test_() ->
    {setup, fun setup/0,
     fun() ->
             Mods = [M || M <- seccomp_guard:app_modules()],
             ?assert(lists:member(seccomp_route, Mods)),
             ?assert(lists:member(seccomp_supervisor, Mods)),
             {ok, Mods2} = application:get_key(beam_seccomp, modules),
             ?assertEqual([], Mods2 -- Mods),
             R = restricted(fun() ->
                                    [seccomp:check({M, module_info, 0}) || M <- Mods2]
                                        ++ [seccomp:check(MFA) || MFA <- [{dbg, tracer, 0}, {seq_trace, set_token, 2},
                                                                          {erlang, trace, 3}, {erl_eval, exprs, 2},
                                                                          {code, load_binary, 3}, {erlang, trace_pattern, 3}]]
                            end),
             ?assert(lists:all(fun(V) -> V =:= {deny, error} end, R)),
             ?assertMatch({'EXIT', {{seccomp_violation, {seccomp_route, call, 3}}, _}},
                          restricted(fun() -> caught(fun() -> seccomp:apply(seccomp_route, call, [os, getpid, []]) end) end))
     end}.

funs_are_checked_test_() ->
    {setup, fun setup/0,
     fun() ->
             ?assertMatch({'EXIT', {{seccomp_violation, {os, getpid, 0}}, _}},
                          restricted(fun() -> caught(fun() -> seccomp:apply(erlang, apply, [fun os:getpid/0, []]) end) end)),
             ?assertMatch({'EXIT', {{seccomp_violation, {os, getpid, 0}}, _}},
                          restricted(fun() -> caught(fun() -> seccomp:apply(lists, map, [fun os:getpid/0, []]) end) end)),
             %% What dbg does when it is cleared: it is refused, and repaired if done from outside.
             ?assertMatch({'EXIT', {{seccomp_violation, {erlang, trace, 3}}, _}},
                          restricted(fun() -> caught(fun() -> seccomp:apply(erlang, apply, [fun erlang:trace/3, [self(), false, [all]]]) end) end)),
             ?assertEqual(3, restricted(fun() -> seccomp:apply(erlang, apply, [fun(X) -> X + 1 end, [2]]) end))
     end}.

tampering_test_() ->
    {setup, fun setup/0,
     fun() ->
             Me = self(),
             Pid = spawn(fun() ->
                                 ok = seccomp:restrict(?NO_OS),
                                 Me ! restricted,
                                 receive go -> ok end,
                                 Me ! {status, maps:get(tracer, seccomp:status(self()))},
                                 Child = seccomp:apply(erlang, spawn, [fun() -> receive stop -> ok end end]),
                                 Me ! {child, seccomp:is_restricted(Child), maps:get(tracer, seccomp:status(self()))}
                         end),
             receive restricted -> ok end,
             ?assertEqual(on, maps:get(tracer, seccomp:status(Pid))),
             erlang:trace(Pid, false, [all]),
             ?assertEqual(off, maps:get(tracer, seccomp:status(Pid))),
             Pid ! go,
             receive {status, S} -> ?assertEqual(off, S) end,
             receive {child, C, After} -> ?assertEqual({true, on}, {C, After}) end,
             %% Another tracer: a clear error, and checked calls are refused.
             Other = spawn(fun() -> receive stop -> ok end end),
             R = in_proc(fun() ->
                                 erlang:trace(self(), true, [procs, {tracer, Other}]),
                                 ok = seccomp:restrict(?NO_OS),
                                 {maps:get(tracer, seccomp:status(self())),
                                  seccomp:inherit_everywhere(self()),
                                  caught(fun() -> seccomp:apply(erlang, spawn, [fun() -> ok end]) end)}
                         end),
             ?assertMatch({{other, Other}, {error, {tracer_in_use, Other}},
                           {'EXIT', {{seccomp_inheritance, {tracer_in_use, Other}}, _}}}, R),
             Other ! stop
     end}.

%%% Supervisors, by message class ---------------------------------------------------------

supervisors_test_() ->
    {setup, fun setup/0,
     fun() ->
             {ok, Sup} = supervisor:start_link(?MODULE, {sup, #{}, []}),
             unlink(Sup),
             Spec = #{id => raw, start => {gen_event, start_link, []}},
             Tag = make_ref(),
             Refused = fun(M, F, A) ->
                               restricted(fun() -> try seccomp:apply(M, F, A), accepted
                                                   catch error:{seccomp_violation, _} -> refused end end)
                       end,
             ?assertEqual(refused, Refused(gen_server, call, [Sup, {start_child, Spec}])),
             ?assertEqual(refused, Refused(gen, call, [Sup, '$gen_call', {start_child, Spec}])),
             ?assertEqual(refused, Refused(erlang, send, [Sup, {'$gen_call', {self(), Tag}, {start_child, Spec}}, []])),
             ?assertEqual(refused, Refused(erlang, send_after, [0, Sup, {'$gen_call', {self(), Tag}, {start_child, Spec}}])),
             ?assertEqual(refused, Refused(erlang, start_timer, [0, Sup, {start_child, Spec}])),
             ?assertEqual(refused, Refused(gen_server, cast, [Sup, {start_child, Spec}])),
             ?assertEqual(refused, Refused(gen_statem, call, [Sup, {start_child, Spec}])),
             ?assertEqual(refused, Refused(erlang, send, [Sup, {system, {self(), Tag}, {replace_state, fun(S) -> S end}}])),
             ?assertEqual(refused, Refused(erlang, send, [alias(), {start_child, Spec}])),
             %% Handlers run in other processes.
             {ok, Mgr} = gen_event:start(),
             ?assertEqual(refused, Refused(gen_event, add_handler, [Mgr, ?MODULE, []])),
             ?assertEqual(refused, Refused(logger, add_handler, [h, ?MODULE, #{}])),
             ?assertEqual([], gen_event:which_handlers(Mgr)),
             gen_event:stop(Mgr),
             timer:sleep(100),
             ?assertEqual([], supervisor:which_children(Sup)),
             %% Through the routed function the child carries the caller's layers.
             {ok, Child} = restricted(fun() -> seccomp:apply(supervisor, start_child, [Sup, Spec]) end),
             ?assert(seccomp:is_restricted(Child)),
             ok = supervisor:terminate_child(Sup, raw),
             {ok, Again} = restricted(fun() -> seccomp:apply(supervisor, restart_child, [Sup, raw]) end),
             ?assert(seccomp:is_restricted(Again)),
             %% A static child spec that is not restricted cannot be restarted by a restricted caller.
             ok = supervisor:terminate_child(Sup, raw),
             ok = supervisor:delete_child(Sup, raw),
             {ok, _} = supervisor:start_child(Sup, Spec#{id => free}),
             ok = supervisor:terminate_child(Sup, free),
             ?assertEqual(refused, Refused(supervisor, restart_child, [Sup, free])),
             exit(Sup, kill)
     end}.

simple_one_for_one_test_() ->
    {setup, fun setup/0,
     fun() ->
             Me = self(),
             Template = seccomp:child_spec(#{id => w, start => {?MODULE, report_start, [Me]},
                                             restart => transient},
                                           #{mode => blacklist, rules => [file]}),
             {ok, Sup} = supervisor:start_link(?MODULE, {sup, #{strategy => simple_one_for_one,
                                                                 intensity => 100}, [Template]}),
             unlink(Sup),
             {ok, W} = supervisor:start_child(Sup, [one]),
             ?assertEqual([true], collect_firsts([])),
             %% A restricted caller: the child carries both layers, before its start function runs.
             {ok, W2} = restricted(fun() -> seccomp:start_child(Sup, [two]) end),
             ?assertEqual(2, length(maps:get(layers, seccomp:status(W2)))),
             ?assertEqual([true], collect_firsts([])),
             %% Restarts keep it.
             {ok, W3} = supervisor:start_child(Sup, [three]),
             receive {first, W3, true} -> ok after 2000 -> ?assert(false) end,
             exit(W3, kill),
             ?assertEqual([true], collect_firsts([])),
             ?assertNot(is_process_alive(W)),
             %% A template that is not restricted: refused to restricted callers.
             {ok, Free} = supervisor:start_link(?MODULE, {sup, #{strategy => simple_one_for_one},
                                                          [#{id => w, start => {?MODULE, report_start, [Me]},
                                                             restart => temporary}]}),
             unlink(Free),
             ?assertMatch({'EXIT', {{seccomp_violation, _}, _}},
                          restricted(fun() -> caught(fun() -> seccomp:start_child(Free, [three]) end) end)),
             ?assertEqual([], collect_firsts([])),
             %% A supervisor the restricted process starts itself is restricted, and so are its children.
             {ok, Own} = restricted(fun() ->
                                            {ok, S} = seccomp:apply(supervisor, start_link,
                                                                    [?MODULE, {sup, #{}, [#{id => w, start => {?MODULE, report_start, [Me, x]},
                                                                                          restart => temporary}]}]),
                                            unlink(S),
                                            {ok, S}
                                    end),
             ?assert(seccomp:is_restricted(Own)),
             ?assertEqual([true], collect_firsts([])),
             [exit(P, kill) || P <- [Sup, Free, Own]]
     end}.

%%% The library's own processes ------------------------------------------------------------

events_test_() ->
    {setup, fun setup/0,
     fun() ->
             Events = whereis(seccomp_events),
             [Events ! Garbage || Garbage <- [x, {x}, {seccomp_watch, 1}, {'DOWN', a, b, c, d}]],
             [gen_server:cast(seccomp_events, G) || G <- [x, {event, x}, {event, #{}}]],
             [caught(fun() -> gen_server:call(seccomp_events, G, 1000) end) || G <- [x, {subscribe, x}, {unsubscribe, 1}]
                                                                      ++ lists:duplicate(12, junk)],
             timer:sleep(50),
             ?assertEqual(Events, whereis(seccomp_events)),
             ?assertEqual({error, not_permitted}, restricted(fun() -> seccomp:subscribe() end)),
             %% A restricted process can neither message nor kill the library's processes.
             ?assertMatch({'EXIT', {{seccomp_violation, _}, _}},
                          restricted(fun() -> caught(fun() -> seccomp:apply(erlang, send, [seccomp_events, x]) end) end)),
             ?assertMatch({'EXIT', {{seccomp_violation, _}, _}},
                          restricted(fun() -> caught(fun() -> seccomp:apply(erlang, exit, [Events, kill]) end) end)),
             ?assertEqual(Events, whereis(seccomp_events))
     end}.

%% With seccomp_events down, entries made by the tracer are not leaked and enforcement holds.
events_down_test_() ->
    {setup, fun setup/0,
     {timeout, 60,
      fun() ->
              ok = supervisor:terminate_child(beam_seccomp_sup, seccomp_events),
              try
                  Before = seccomp:table_size(),
                  [restricted(fun() ->
                                      Me = self(),
                                      C = seccomp:apply(erlang, spawn, [fun() -> Me ! seccomp:is_restricted(self()) end]),
                                      receive B -> {C, B} end
                              end) || _ <- lists:seq(1, 200)],
                  ?assertMatch({_, true}, restricted(fun() ->
                                                              Me = self(),
                                                              C = seccomp:apply(erlang, spawn, [fun() -> Me ! seccomp:is_restricted(self()) end]),
                                                              receive B -> {C, B} end
                                                      end)),
                  %% Draining happens at the next restriction anywhere.
                  _ = restricted(fun() -> ok end),
                  timer:sleep(100),
                  ?assert(seccomp:table_size() =< Before + 2)
              after
                  {ok, _} = supervisor:restart_child(beam_seccomp_sup, seccomp_events)
              end
      end}}.

%%% Bad input ------------------------------------------------------------------------------

json_atoms_test_() ->
    {setup, fun setup/0,
     fun() ->
             Names = [iolist_to_binary(["seccomp_json_atom_", integer_to_list(I), "_", integer_to_list(erlang:unique_integer([positive]))])
                      || I <- lists:seq(1, 20000)],
             Rules = [iolist_to_binary(["{\"module\":\"", N, "\"}"]) || N <- Names],
             Before = erlang:system_info(atom_count),
             Big = iolist_to_binary([<<"{\"mode\":\"blacklist\",\"no_spawn\":false,\"inherit\":true,\"default_action\":\"error\",\"rules\":[">>,
                                     lists:join(",", Rules), <<"]}">>]),
             R = seccomp:policy_from_json(Big),
             ?assertMatch({error, {invalid_json, _}}, R),
             ?assert(erlang:system_info(atom_count) - Before < 100),
             %% A few new names are fine (a blacklist may name a module not loaded yet).
             Few = iolist_to_binary([<<"{\"mode\":\"blacklist\",\"no_spawn\":false,\"inherit\":true,\"default_action\":\"error\",\"rules\":[">>,
                                     lists:join(",", lists:sublist(Rules, 3)), <<"]}">>]),
             ?assertMatch({ok, _}, seccomp:policy_from_json(Few))
     end}.

nif_badarg_test_() ->
    {setup, fun setup/0,
     fun() ->
             Garbage = [[a | b], [1, 2 | 3], {}, <<1:3>>, make_ref(), self(), fun() -> ok end, 1 bsl 70,
                        -1, 256, 3.5, "x", [], #{}, {blacklist, false, true, error, [x | y]},
                        {blacklist, false, true, error, [{os, '_', '_', default} | x]},
                        {whitelist, 1, 2, 3, 4}, list_to_atom("nope")],
             Exports = [{F, A} || {F, A} <- seccomp_nif:module_info(exports), F =/= module_info,
                                  F =/= load_error, F =/= enabled, F =/= trace],
             [begin
                  Args = [lists:nth(rand:uniform(length(Garbage)), Garbage) || _ <- lists:seq(1, A)],
                  R = in_proc(fun() -> caught(fun() -> erlang:apply(seccomp_nif, F, Args) end) end),
                  ?assertNotMatch({'EXIT', {nif_panicked, _}}, R),
                  ?assertNotMatch({died, _}, R)
              end || {F, A} <- Exports, _ <- lists:seq(1, 200)],
             %% Improper lists never reach the NIF as a policy.
             ?assertMatch({error, {invalid_policy, _}}, seccomp:policy(#{rules => [os | x]})),
             ?assertError({badarg, _}, seccomp:apply(lists, reverse, [a | b]))
     end}.

mine(M) -> lists:prefix("seccomp", atom_to_list(M)) orelse lists:prefix("beam_seccomp", atom_to_list(M)).

%% The library's modules form no call cycle: the core (enforcement points
%% plug into seccomp_route), the sandbox (its handler, eval, prepared code
%% and pools) and everything else but the distribution carrier, which is
%% structured on its own.
no_cycles_test_() ->
    {timeout, 60,
     fun() ->
             Ebin = filename:dirname(code:which(seccomp)),
             {ok, _} = xref:start(seccomp_cycles, [{xref_mode, modules}]),
             try
                 {ok, _} = xref:add_directory(seccomp_cycles, Ebin, [{warnings, false}]),
                 {ok, Edges} = xref:q(seccomp_cycles, "ME"),
                 Mine = [{A, B} || {A, B} <- Edges, A =/= B, mine(A), mine(B)],
                 G = digraph:new(),
                 [begin digraph:add_vertex(G, A), digraph:add_vertex(G, B), digraph:add_edge(G, A, B) end
                  || {A, B} <- Mine],
                 ?assert(length(Mine) > 10),
                 Sandbox = [M || M <- digraph:vertices(G), lists:prefix("seccomp_sandbox", atom_to_list(M))],
                 %% The handler's concerns are modules of their own.
                 ?assert(length(Sandbox) >= 8),
                 [?assert(lists:member(M, digraph:vertices(G)))
                  || M <- [seccomp, seccomp_route, seccomp_eval, seccomp_prepare, seccomp_prepared,
                           seccomp_pool, seccomp_compile, seccomp_sandbox]],
                 Cycles = [C || C <- digraph_utils:cyclic_strong_components(G),
                                not lists:all(fun(M) -> lists:prefix("seccomp_dist", atom_to_list(M)) end, C)],
                 ?assertEqual([], Cycles)
             after
                 xref:stop(seccomp_cycles)
             end
     end}.
