%% EUnit tests: what a restricted caller's arguments name is checked.
%% Code named as data (module-function pairs, external funs) is checked like
%% a call of the caller; the node's system processes and the library's own
%% are out of reach; functions that change the node need a whitelist;
%% policy sources cannot loop; a start only hands out what it spawned; JSON
%% policies cannot fill the atom table. The policy is a blacklist that names
%% only `os' and this module's `forbidden' probe: none of the vectors is named.
-module(seccomp_reach_tests).
-include_lib("eunit/include/eunit.hrl").

-export([forbidden/1, forbidden/0, init/1, existing/1, sys_vectors/0, library_vectors/0,
         squatting/0, halting_fun/0, no_spawn_vectors/0, spawner_sets/0]).

-include("caught.hrl").

-define(POLICY, #{mode => blacklist, rules => [os, {?MODULE, forbidden, '_'}]}).

%% The probe the policy forbids: it must never run.
forbidden(Report) -> Report ! {forbidden_ran, self()}, ran.
forbidden() -> forbidden(whereis(seccomp_reach_tests_collector)).

%% supervisor callback
init({sup, Children}) -> {ok, {#{}, Children}}.

%% A start function that returns a process it did not start.
existing(Pid) -> {ok, Pid}.

setup() -> {ok, _} = application:ensure_all_started(beam_seccomp), ok.

%% Run Fun in a fresh process restricted by ?POLICY: its value, or
%% `refused' for a seccomp violation, or `{other, Class, Reason}'.
restricted(Fun) -> restricted(?POLICY, Fun).

restricted(Policy, Fun) ->
    {Pid, Ref} = spawn_monitor(fun() ->
                                       ok = seccomp:restrict(Policy),
                                       exit({result, try Fun() of V -> V
                                                     catch error:{seccomp_violation, _} -> refused;
                                                           C:R -> {other, C, R}
                                                     end})
                               end),
    receive {'DOWN', Ref, process, Pid, {result, R}} -> R;
            {'DOWN', Ref, process, Pid, Other} -> {died, Other}
    after 20000 -> exit(Pid, kill), timeout
    end.

%% Whether the forbidden probe ran anywhere within a moment.
probe_ran() ->
    receive {forbidden_ran, _} -> true after 300 -> false end.

%%% Code named as data ------------------------------------------------------------

%% Every function of the modules that start processes or apply data
%% (their exports, read from the modules), with the probe as an
%% `{M, F, Args}' in every position and as a tuple: refused before anything
%% runs. What decides is the data, so this holds for any function.
mfa_data_test_() ->
    {setup, fun setup/0,
     {timeout, 120, fun() ->
         Me = self(),
         Mods = [erlang, proc_lib, timer, supervisor, gen_server, gen_statem, rpc, erpc, application,
                 lists, 'Elixir.Task', 'Elixir.Agent', 'Elixir.Task.Supervisor', 'Elixir.Enum'],
         Funs = [{M, F, A} || M <- Mods, code:ensure_loaded(M) =:= {module, M},
                              {F, A} <- M:module_info(exports), A >= 1, A =< 5,
                              F =/= module_info],
         ?assert(length(Funs) > 400),
         Calls = [{M, F, Args} || {M, F, A} <- Funs, Args <- placements(A, Me)],
         Outcomes = [{MFA, restricted(fun() -> seccomp:apply(M, F, Args) end)}
                     || {M, F, Args} = MFA <- Calls],
         ?assertEqual([], [X || {_, R} = X <- Outcomes, R =/= refused]),
         ?assertNot(probe_ran())
     end}}.

placements(A, Me) ->
    MFA = [?MODULE, forbidden, [Me]],
    [lists:duplicate(I, 0) ++ MFA ++ lists:duplicate(A - I - 3, 0) || A >= 3, I <- lists:seq(0, A - 3)]
        ++ [lists:duplicate(I, 0) ++ [{?MODULE, forbidden, [Me]}] ++ lists:duplicate(A - I - 1, 0)
            || I <- lists:seq(0, A - 1)]
        ++ [lists:duplicate(I, 0) ++ [fun ?MODULE:forbidden/1] ++ lists:duplicate(A - I - 1, 0)
            || I <- lists:seq(0, A - 1)].

%% An external fun that applies data (`fun erlang:apply/3') handed to a
%% higher-order function: each call it makes is checked.
applying_funs_test_() ->
    {setup, fun setup/0,
     fun() ->
         Me = self(),
         Vectors = [{lists, zipwith3, [fun erlang:apply/3, [?MODULE], [forbidden], [[Me]]]},
                    {lists, map, [fun erlang:apply/2, [[fun ?MODULE:forbidden/1, [Me]]]]},
                    {lists, foldl, [fun erlang:apply/2, [Me], [fun ?MODULE:forbidden/1]]},
                    {lists, zipwith, [fun erlang:apply/2, [fun erlang:apply/3], [[?MODULE, forbidden, [Me]]]]},
                    {lists, zipwith3, [fun timer:tc/3, [?MODULE], [forbidden], [[Me]]]},
                    {erlang, apply, [fun erlang:apply/3, [?MODULE, forbidden, [Me]]]}],
         [?assertMatch({_, refused}, {V, restricted(fun() -> seccomp:apply(M, F, A) end)})
          || {M, F, A} = V <- Vectors],
         %% Allowed calls through applying funs still work.
         ?assertEqual([3, 2], restricted(fun() -> seccomp:apply(lists, zipwith3,
                                                                 [fun erlang:apply/3, [lists, lists],
                                                                  [max, min], [[[1, 3]], [[2, 4]]]])
                                          end)),
         ?assertNot(probe_ran())
     end}.

%% seccomp's own spawn functions and remote calls check what they are given.
spawn_api_test_() ->
    {setup, fun setup/0,
     fun() ->
         Me = self(),
         true = register(seccomp_reach_tests_collector, Me),
         Vectors = [fun() -> seccomp:spawn(fun ?MODULE:forbidden/0) end,
                    fun() -> seccomp:spawn_link(fun ?MODULE:forbidden/0) end,
                    fun() -> seccomp:spawn_monitor(fun ?MODULE:forbidden/0) end,
                    fun() -> seccomp:spawn_opt(fun ?MODULE:forbidden/0, []) end,
                    fun() -> seccomp:spawn(erlang, apply, [fun ?MODULE:forbidden/1, [Me]]) end,
                    fun() -> seccomp:spawn(timer, tc, [?MODULE, forbidden, [Me]]) end,
                    fun() -> seccomp:spawn_opt(proc_lib, spawn, [?MODULE, forbidden, [Me]], []) end,
                    %% Remote calls (to this node too) are checked where they run.
                    fun() -> remote_refused(seccomp:rpc_call(node(), erlang, spawn, [?MODULE, forbidden, [Me]])) end,
                    fun() -> remote_refused(caught(fun() -> seccomp:erpc_call(node(), timer, tc, [?MODULE, forbidden, [Me]]) end)) end],
         Outcomes = [restricted(V) || V <- Vectors],
         unregister(seccomp_reach_tests_collector),
         ?assertEqual(lists:duplicate(length(Vectors), refused), Outcomes),
         ?assertNot(probe_ran())
     end}.

remote_refused({badrpc, {'EXIT', {error, {exception, {seccomp_violation, _}, _}}}}) -> refused;
remote_refused({'EXIT', {{exception, {seccomp_violation, _}, _}, _}}) -> refused;
remote_refused(Other) -> Other.

%% seccomp:spawn(fun erlang:halt/0) would end the VM if it regressed: in a VM of its own.
halting_fun_test_() ->
    {timeout, 60, ?_assertEqual(refused, in_peer(halting_fun))}.

halting_fun() ->
    setup(),
    restricted(#{mode => blacklist, rules => [os]}, fun() -> seccomp:spawn(fun erlang:halt/0), timer:sleep(500) end).

%%% no_spawn covers every function that can start a process ------------------------

%% Every function of the derived set (and every spawn BIF) is refused to a
%% `no_spawn' caller before it runs, whatever its arguments. In a VM of its
%% own: a regression would run shell and node functions with junk arguments.
no_spawn_test_() ->
    {timeout, 120, fun() ->
        {Count, NotRefused} = in_peer(no_spawn_vectors, 90000),
        ?assert(Count > 500),
        ?assertEqual([], NotRefused)
    end}.

no_spawn_vectors() ->
    setup(),
    logger:set_primary_config(level, none),
    BIFs = [{erlang, F, A} || {F, A} <- erlang:module_info(exports), lists:prefix("spawn", atom_to_list(F))],
    ok = seccomp_spawners:ensure(),
    {ok, Derived} = seccomp_spawners:derive(),
    All = lists:usort(BIFs ++ Derived),
    Policy = #{mode => blacklist, rules => [os], no_spawn => true},
    Outcomes = [{MFA, restricted(Policy, fun() -> seccomp:apply(M, F, lists:duplicate(A, 0)) end)}
                || {M, F, A} = MFA <- All],
    {length(All), [O || {_, R} = O <- Outcomes, R =/= refused]}.

%% The set `no_spawn' uses is derived from the running OTP and Elixir: it
%% holds the known starters, and it is what xref's own query language
%% derives from the same applications (an independent walk of the graph).
%% In a VM of its own, with Elixir on the code path.
spawners_are_derived_test_() ->
    {timeout, 180, fun() ->
        {Derived, ByQuery, Unknown} = in_peer(spawner_sets, 150000),
        ?assert(length(Derived) > 500),
        [?assert(lists:member(MFA, Derived))
         || MFA <- [{proc_lib, spawn, 1}, {gen_server, start, 3}, {supervisor, start_link, 2},
                    {timer, apply_after, 4}, {'Elixir.Task', async, 1}, {'Elixir.Agent', start, 1},
                    {erlang, spawn, 1}, {erlang, spawn_opt, 4}]],
        ?assertEqual([], Derived -- ByQuery),
        ?assertEqual([], ByQuery -- Derived),
        ?assertEqual([], Unknown)
    end}.

spawner_sets() ->
    setup(),
    ok = seccomp_spawners:ensure(),
    {ok, Derived} = seccomp_spawners:derive(),
    Sinks = seccomp_spawners:sinks(),
    {ok, X} = xref:start([{xref_mode, functions}]),
    try
        ok = xref:set_default(X, [{warnings, false}, {verbose, false}, {builtins, true}]),
        [{ok, _} = xref:add_directory(X, filename:join(code:lib_dir(App), "ebin"))
         || App <- [kernel, stdlib, elixir]],
        {ok, Called} = xref:q(X, "range E"),
        Names = lists:join(", ", [io_lib:format("~p:~p/~p", [M, F, A]) || {M, F, A} <- Sinks,
                                                                       lists:member({M, F, A}, Called)]),
        {ok, Callers} = xref:q(X, lists:flatten(["domain (closure E || [", Names, "]) * X"])),
        %% Every member is one to the route (no_spawn) too.
        Unknown = [MFA || {M, F, A} = MFA <- Derived, seccomp_spawners:status(M, F, A) =/= true],
        {Derived, lists:usort(Sinks ++ Callers), Unknown}
    after
        xref:stop(X)
    end.

%%% System and library processes ------------------------------------------------

%% Every registered process of the node that belongs to OTP, Elixir, no
%% application, or this library (read from the running node) is out of
%% reach by name and by pid, whatever the send path. In a VM of its own: a
%% regression would stop system processes.
system_processes_test_() ->
    {timeout, 120, fun() ->
        {Names, Outcomes} = in_peer(sys_vectors, 90000),
        ?assert(length(Names) > 15),
        [?assert(lists:member(N, Names)) || N <- [rex, code_server, kernel_safe_sup, application_controller,
                                                  logger, init, seccomp_events, beam_seccomp_sup]],
        ?assertEqual([], [O || {_, R} = O <- Outcomes, R =/= refused])
    end}.

sys_vectors() ->
    setup(),
    %% The processes as they stay: the call graph's background derivation ends.
    ok = seccomp_spawners:ensure(),
    Names = [N || N <- registered(), seccomp_args:is_protected(whereis(N))],
    Msg = {'$gen_call', {self(), make_ref()}, {start_child, #{id => x, start => {erlang, self, []}}}},
    Spec = #{id => x, start => {erlang, self, []}},
    Vectors = fun(D) -> [{erlang, send, [D, Msg]}, {erlang, send, [D, Msg, []]},
                         {erlang, send_after, [0, D, Msg]}, {timer, send_after, [0, D, Msg]},
                         {erlang, exit, [D, kill]}, {timer, exit_after, [0, D, kill]},
                         {gen_server, cast, [D, {cast, erlang, self, [], user}]},
                         {supervisor, start_child, [D, Spec]}, {supervisor, terminate_child, [D, x]},
                         {proc_lib, stop, [D]}, {global, register_name, [rt_name, D]},
                         {erlang, monitor, [process, D]}, {erlang, link, [D]},
                         {erlang, group_leader, [D, self()]}]
              end,
    %% A system process under a global name (registered by trusted code).
    yes = global:register_name(rt_glob, whereis(kernel_safe_sup)),
    Global = [{global, send, [rt_glob, Msg]}, {gen_server, cast, [{global, rt_glob}, x]},
              {gen_server, cast, [{via, global, rt_glob}, x]}],
    Outcomes = [{{N, V}, restricted(fun() -> seccomp:apply(M, F, A) end)}
                || N <- Names, D <- [N, whereis(N)], {M, F, A} = V <- Vectors(D)]
        ++ [{V, restricted(fun() -> seccomp:apply(M, F, A) end)} || {M, F, A} = V <- Global],
    {Names, Outcomes}.

%% The library cannot be switched off, stopped or impersonated.
library_test_() ->
    {timeout, 60, fun() ->
        {Before, Outcomes, After} = in_peer(library_vectors, 40000),
        ?assertEqual([], [O || {_, R} = O <- Outcomes, R =/= refused]),
        ?assertEqual(Before, After)
    end}.

library_vectors() ->
    setup(),
    Pids = fun() -> [whereis(N) || N <- [beam_seccomp_sup, seccomp_events, seccomp_prepared]] end,
    Before = Pids(),
    Vectors = [{supervisor, terminate_child, [beam_seccomp_sup, seccomp_events]},
               {application, stop, [beam_seccomp]},
               {'Elixir.Application', stop, [beam_seccomp]},
               {timer, exit_after, [10, seccomp_events, kill]},
               {timer, kill_after, [10, seccomp_prepared]},
               {proc_lib, stop, [seccomp_events]},
               {timer, send_after, [0, seccomp_events, {system, {self(), make_ref()}, suspend}]},
               {erlang, register, [seccomp_events, self()]},
               {erlang, register, [seccomp_prepared, self()]},
               {erlang, unregister, [seccomp_events]},
               {application, set_env, [beam_seccomp, trap_timeout, garbage]},
               {gen_server, call, [seccomp_events, {subscribe, self()}]}],
    Outcomes = [{V, restricted(fun() -> seccomp:apply(M, F, A) end)} || {M, F, A} = V <- Vectors],
    timer:sleep(500),
    {Before, Outcomes, Pids()}.

%% A process that took a library name (after the server stopped) is never
%% talked to: no events, no prepared code, and callers get a clear error.
squatting_test_() ->
    {timeout, 60, ?_assertMatch({{error, not_started}, nothing, {'EXIT', {noproc, _}}, nothing},
                                in_peer(squatting, 40000))}.

squatting() ->
    setup(),
    ok = supervisor:terminate_child(beam_seccomp_sup, seccomp_events),
    ok = supervisor:terminate_child(beam_seccomp_sup, seccomp_prepared),
    Me = self(),
    Squatter = fun(Name) -> spawn(fun() -> register(Name, self()), Me ! registered,
                                           receive M -> Me ! {squatter_got, Name, M} end end) end,
    Squatter(seccomp_events), receive registered -> ok end,
    Squatter(seccomp_prepared), receive registered -> ok end,
    refused = restricted(fun() -> seccomp:apply(os, getpid, []) end),
    Subscribe = seccomp:subscribe(),
    Events = receive {squatter_got, seccomp_events, _} -> got after 500 -> nothing end,
    Prepared = caught(fun() -> seccomp_prepared:reserve(self()) end),
    Code = receive {squatter_got, seccomp_prepared, _} -> got after 500 -> nothing end,
    {Subscribe, Events, Prepared, Code}.

%%% Functions that change the node -------------------------------------------------

node_changes_test_() ->
    {setup, fun setup/0,
     fun() ->
         Vectors = [{application, set_env, [kernel, rt_key, 1]},
                    {application, unset_env, [kernel, rt_key]},
                    {application, load, [{application, rt_app, [{mod, {os, cmd}}]}]},
                    {application, start, [rt_app]},
                    {application, ensure_all_started, [rt_app]},
                    {'Elixir.Application', put_env, [kernel, rt_key, 1]},
                    {logger, add_handler, [rt_h, logger_std_h, #{}]},
                    {logger, set_primary_config, [level, none]},
                    {logger, update_handler_config, [default, level, none]},
                    {net_kernel, start, [[rt_node, shortnames]]},
                    {auth, set_cookie, [pwned]},
                    {erlang, set_cookie, [node(), pwned]}],
         [?assertEqual({V, refused}, {V, restricted(fun() -> seccomp:apply(M, F, A) end)})
          || {M, F, A} = V <- Vectors],
         ?assertEqual(undefined, application:get_env(kernel, rt_key)),
         ?assertEqual(nonode@nohost, node()),
         %% Reading stays open.
         ?assertMatch({ok, _}, restricted(fun() -> seccomp:apply(application, get_key, [kernel, vsn]) end)),
         %% A whitelist that names a function allows it.
         ?assertEqual(ok, restricted(#{rules => [{application, set_env, 3}]},
                                     fun() -> seccomp:apply(application, set_env, [kernel, rt_key, 1]) end)),
         ?assertEqual({ok, 1}, application:get_env(kernel, rt_key)),
         application:unset_env(kernel, rt_key)
     end}.

%% A trap_timeout that is not a timeout is ignored: brokers still answer.
trap_timeout_garbage_test_() ->
    {setup, fun setup/0,
     fun() ->
         ok = application:set_env(beam_seccomp, trap_timeout, garbage),
         Broker = spawn(fun Loop() ->
                                receive {seccomp_trap, Ref, _, _} -> seccomp:trap_reply(Ref, allow), Loop() end
                        end),
         R = restricted(#{mode => blacklist, rules => [{lists, reverse, 1}], default_action => {trap, Broker}},
                        fun() -> seccomp:apply(lists, reverse, [[1, 2]]) end),
         application:unset_env(beam_seccomp, trap_timeout),
         exit(Broker, kill),
         ?assertEqual([2, 1], R)
     end}.

%%% Policy sources, starts, JSON --------------------------------------------------------

%% A policy source that refers to itself is an error, not a loop.
policy_source_cycle_test_() ->
    {setup, fun setup/0,
     fun() ->
         application:set_env(kernel, rt_loop, {app_env, kernel, rt_loop}),
         {ok, Sup} = supervisor:start_link(?MODULE, {sup, []}),
         unlink(Sup),
         Spec = seccomp:child_spec(#{id => w, start => {gen_event, start_link, []}},
                                   {app_env, kernel, rt_loop}),
         Self = self(),
         spawn(fun() -> Self ! {started, supervisor:start_child(Sup, Spec)} end),
         R = receive {started, S} -> S after 5000 -> hang end,
         ?assertMatch({error, _}, R),
         ?assertEqual([], supervisor:which_children(Sup)),
         exit(Sup, kill),
         application:unset_env(kernel, rt_loop)
     end}.

%% A start that returns a process it did not start hands nothing out:
%% the process is neither restricted nor adopted (and so not terminated).
start_returns_existing_test_() ->
    {setup, fun setup/0,
     fun() ->
         Victim = spawn(fun() -> receive stop -> ok end end),
         {ok, Sup} = supervisor:start_link(?MODULE, {sup, []}),
         unlink(Sup),
         R = restricted(fun() -> seccomp:start_child(Sup, #{id => v, start => {?MODULE, existing, [Victim]}}) end),
         ?assertMatch({error, _}, R),
         ?assertNot(seccomp:is_restricted(Victim)),
         ?assertEqual([], supervisor:which_children(Sup)),
         %% A start MFA the caller may not call is refused before the supervisor runs it.
         ?assertEqual(refused, restricted(fun() -> seccomp:start_child(Sup, #{id => f, start => {os, cmd, ["true"]}}) end)),
         ?assert(is_process_alive(Victim)),
         Victim ! stop,
         exit(Sup, kill)
     end}.

%% Rejected JSON policies add no atoms, and no number of JSON policies fills the table.
json_atoms_test_() ->
    {setup, fun setup/0,
     {timeout, 60, fun() ->
         Json = fun(K, N) ->
                        Rules = [["{\"module\":\"rt_reach_atom_", integer_to_list(K), "_", integer_to_list(I), "\"}"]
                                 || I <- lists:seq(1, N)],
                        iolist_to_binary(["{\"mode\":\"blacklist\",\"no_spawn\":false,\"inherit\":true,",
                                          "\"default_action\":\"allow\",\"rules\":[", lists:join(",", Rules), "]}"])
                end,
         Before = erlang:system_info(atom_count),
         [{error, _} = seccomp:policy_from_json(Json(K, 2000)) || K <- lists:seq(1, 20)],
         ?assert(erlang:system_info(atom_count) - Before < 100)
     end}}.

%%% A VM of its own ---------------------------------------------------------------

in_peer(Scenario) -> in_peer(Scenario, 20000).

in_peer(Scenario, Timeout) ->
    Paths = lists:append([["-pa", P] || P <- code:get_path() ++ elixir_path()]),
    {ok, Peer, _} = peer:start_link(#{connection => 0, args => Paths}),
    OsPid = peer:call(Peer, os, getpid, []),
    try peer:call(Peer, ?MODULE, Scenario, [], Timeout)
    catch exit:{timeout, _} -> timeout;
          exit:{noconnection, _} -> vm_ended
    after
        os:cmd("kill -9 " ++ OsPid),
        caught(fun() -> peer:stop(Peer) end)
    end.

%% Elixir's code directories (whether or not this VM has them on its path).
elixir_path() ->
    case code:which('Elixir.Kernel') of
        non_existing ->
            Dir = string:trim(os:cmd("elixir -e 'IO.write(:code.lib_dir(:elixir))' 2>/dev/null")),
            [filename:join(D, "ebin") || D <- filelib:wildcard(filename:join(filename:dirname(Dir), "*"))];
        Beam ->
            [filename:join(D, "ebin") || D <- filelib:wildcard(filename:join(filename:dirname(filename:dirname(filename:dirname(Beam))), "*"))]
    end.
