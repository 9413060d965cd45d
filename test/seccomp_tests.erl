%% EUnit tests of the Erlang API of beam_seccomp.
-module(seccomp_tests).
-include_lib("eunit/include/eunit.hrl").
-include("caught.hrl").

%% The derived spawner set is built in the background once per VM (seconds
%% on a loaded machine): known before the first test's checks wait for it.
setup() ->
    {ok, _} = application:ensure_all_started(beam_seccomp),
    ok = seccomp_spawners:ensure().

%% Run Fun in a fresh process and return its result (restrictions are per process).
in_proc(Fun) ->
    {Pid, Ref} = erlang:spawn_monitor(fun() -> exit({result, caught(Fun)}) end),
    receive {'DOWN', Ref, process, Pid, {result, R}} -> R;
            {'DOWN', Ref, process, Pid, Other} -> {died, Other}
    end.

policy(Map) -> {ok, P} = seccomp:policy(Map), P.

api_test_() ->
    {timeout, 300, {setup, fun setup/0, [
        fun policy_defaults/0,
        fun policy_errors_name_the_element/0,
        fun whitelist_apply/0,
        fun blacklist_apply/0,
        fun stacking_only_tightens/0,
        fun restrict_other_needs_unrestricted_caller/0,
        fun spawn_family_inherits/0,
        fun no_spawn_is_a_violation/0,
        fun log_action_records_and_proceeds/0,
        fun kill_action_is_untrappable/0,
        fun trap_asks_the_broker/0,
        fun self_protection/0,
        fun status_and_table/0,
        fun files_round_trip/0,
        fun bad_input/0
    ]}}.

policy_defaults() ->
    P = policy(#{}),
    ?assertEqual(#{mode => whitelist, rules => [], no_spawn => false, inherit => true,
                   default_action => error}, seccomp_policy:spec(P)),
    Q = policy(#{rules => [lists, {maps, get, '_'}, #{match => os, action => kill}]}),
    ?assertEqual([{lists, '_', '_'}, {maps, get, '_'}, #{match => {os, '_', '_'}, action => kill}],
                 maps:get(rules, seccomp_policy:spec(Q))).

policy_errors_name_the_element() ->
    E = fun(M) -> {error, {invalid_policy, Why}} = seccomp:policy(M), Why end,
    ?assertEqual({mode, greylist}, E(#{mode => greylist})),
    ?assertEqual({unknown_key, colour}, E(#{colour => red})),
    ?assertEqual({rule, {lists, map, -1}}, E(#{rules => [lists, {lists, map, -1}]})),
    ?assertEqual({rule, "lists"}, E(#{rules => ["lists"]})),
    ?assertEqual({rule, #{match => os, action => nuke}}, E(#{rules => [#{match => os, action => nuke}]})),
    ?assertEqual({rules, not_a_list, lists}, E(#{rules => lists})),
    ?assertMatch({rules, not_a_list, _}, E(#{rules => [lists | maps]})),
    ?assertEqual({default_action, allow}, E(#{default_action => allow})),
    ?assertEqual({default_action, {trap, 42}}, E(#{default_action => {trap, 42}})),
    ?assertEqual({no_spawn, yes}, E(#{no_spawn => yes})),
    ?assertEqual({inherit, 1}, E(#{inherit => 1})),
    ?assertEqual({not_a_map, [{mode, whitelist}]}, element(2, element(2, seccomp:policy([{mode, whitelist}])))).

whitelist_apply() ->
    P = policy(#{rules => [lists, {erlang, length, 1}]}),
    R = in_proc(fun() ->
            ok = seccomp:restrict(P),
            A = seccomp:apply(lists, reverse, [[1, 2, 3]]),
            B = seccomp:apply(erlang, length, [[a, b]]),
            C = caught(fun() -> seccomp:apply(os, getenv, ["HOME"]) end),
            D = caught(fun() -> seccomp:apply(erlang, length, [[a], extra]) end),
            {A, B, C, D, seccomp:check({os, cmd, 1}), seccomp:check({lists, map, 2})}
        end),
    ?assertMatch({[3, 2, 1], 2, {'EXIT', {{seccomp_violation, {os, getenv, 1}}, _}},
                  {'EXIT', {{seccomp_violation, {erlang, length, 2}}, _}},
                  {deny, error}, allow}, R).

blacklist_apply() ->
    P = policy(#{mode => blacklist, rules => [os, {file, '_', 1}]}),
    R = in_proc(fun() ->
            ok = seccomp:restrict(P),
            {seccomp:check({os, cmd, 1}), seccomp:check({file, read_file, 1}),
             seccomp:check({file, read_file, 2}), seccomp:apply(lists, sum, [[1, 2]])}
        end),
    ?assertEqual({{deny, error}, {deny, error}, allow, 3}, R).

stacking_only_tightens() ->
    Wide = policy(#{rules => [lists, maps]}),
    Narrow = policy(#{mode => blacklist, rules => [maps]}),
    Widen = policy(#{rules => [lists, maps, os]}),
    R = in_proc(fun() ->
            ok = seccomp:restrict(Wide),
            ok = seccomp:restrict(Narrow),
            ok = seccomp:restrict(Widen),
            {seccomp:check({lists, map, 2}), seccomp:check({maps, get, 2}), seccomp:check({os, cmd, 1}),
             length(maps:get(layers, seccomp:status(self())))}
        end),
    ?assertEqual({allow, {deny, error}, {deny, error}, 3}, R).

restrict_other_needs_unrestricted_caller() ->
    P = policy(#{rules => [lists]}),
    Victim = spawn(fun() -> receive stop -> ok end end),
    R = in_proc(fun() -> ok = seccomp:restrict(P), seccomp:restrict(Victim, P) end),
    ?assertEqual({error, not_permitted}, R),
    ?assertEqual(disabled, maps:get(mode, seccomp:status(Victim))),
    ?assertEqual(ok, seccomp:restrict(Victim, P)),
    ?assertEqual({deny, error}, seccomp:check(Victim, {os, cmd, 1})),
    Victim ! stop,
    Dead = spawn(fun() -> ok end),
    timer:sleep(20),
    ?assertEqual({error, noproc}, seccomp:restrict(Dead, P)).

spawn_family_inherits() ->
    P = policy(#{rules => [lists]}),
    Refused = in_proc(fun() ->
        ok = seccomp:restrict(P),
        seccomp:spawn(erlang, apply, [fun() -> ok end, []])
    end),
    %% erlang:apply/2 is not in the policy: spawn/3 of it is refused
    ?assertMatch({'EXIT', {{seccomp_violation, {erlang, apply, 2}}, _}}, Refused),
    Verdicts = in_proc(fun() ->
        ok = seccomp:restrict(P),
        Parent = self(),
        Report = fun() -> Parent ! {child, self(), seccomp:check({os, cmd, 1})} end,
        {Pm, _} = seccomp:spawn_monitor(Report),
        Pids = [seccomp:spawn(Report), seccomp:spawn_link(Report), Pm, seccomp:spawn_opt(Report, []),
                seccomp:spawn(lists, foreach, [fun(_) -> Report() end, [x]])],
        [receive {child, Pid, V} -> V after 2000 -> timeout end || Pid <- Pids]
    end),
    ?assertEqual([{deny, error} || _ <- lists:seq(1, 5)], Verdicts).

no_spawn_is_a_violation() ->
    P = policy(#{rules => [lists], no_spawn => true}),
    R = in_proc(fun() -> ok = seccomp:restrict(P), seccomp:spawn(fun() -> ok end) end),
    ?assertMatch({'EXIT', {{seccomp_violation, {erlang, spawn, 1}}, _}}, R),
    NoInherit = policy(#{rules => [lists], inherit => false}),
    Self = self(),
    in_proc(fun() -> ok = seccomp:restrict(NoInherit),
                     seccomp:spawn(fun() -> Self ! {free, seccomp:is_restricted(self())} end) end),
    receive {free, F} -> ?assertEqual(false, F) after 2000 -> error(timeout) end.

log_action_records_and_proceeds() ->
    ok = seccomp:subscribe(),
    P = policy(#{rules => [#{match => {erlang, node, 0}, action => log}]}),
    R = in_proc(fun() -> ok = seccomp:restrict(P), seccomp:apply(erlang, node, []) end),
    ?assertEqual(node(), R),
    receive {seccomp_event, #{mfa := {erlang, node, 0}, action := log, outcome := allowed}} -> ok
    after 2000 -> error(no_event)
    end,
    ok = seccomp:unsubscribe().

kill_action_is_untrappable() ->
    ok = seccomp:subscribe(),
    P = policy(#{rules => [], default_action => kill}),
    {Pid, Ref} = spawn_monitor(fun() ->
        process_flag(trap_exit, true),
        ok = seccomp:restrict(P),
        _ = caught(fun() -> seccomp:apply(os, getpid, []) end),
        exit(survived)
    end),
    receive {'DOWN', Ref, process, Pid, Why} -> ?assertEqual(killed, Why) after 2000 -> error(timeout) end,
    receive {seccomp_event, #{pid := Pid, mfa := {os, getpid, 0}, outcome := killed}} -> ok
    after 2000 -> error(no_event)
    end,
    ok = seccomp:unsubscribe().

trap_asks_the_broker() ->
    Broker = spawn(fun Loop() ->
        receive {seccomp_trap, Ref, _Pid, {_, F, _}} ->
            seccomp:trap_reply(Ref, case F of getpid -> allow; _ -> deny end),
            Loop()
        end
    end),
    P = policy(#{rules => [], default_action => {trap, Broker}}),
    R = in_proc(fun() ->
        ok = seccomp:restrict(P),
        {seccomp:apply(os, getpid, []) =:= os:getpid(), caught(fun() -> seccomp:apply(os, getenv, []) end)}
    end),
    ?assertMatch({true, {'EXIT', {{seccomp_violation, {os, getenv, 0}}, _}}}, R),
    exit(Broker, kill),
    %% a dead or silent broker means deny
    Silent = spawn(fun() -> receive never -> ok end end),
    application:set_env(beam_seccomp, trap_timeout, 50),
    try
        Q = policy(#{rules => [], default_action => {trap, Silent}}),
        R2 = in_proc(fun() -> ok = seccomp:restrict(Q), caught(fun() -> seccomp:apply(os, getpid, []) end) end),
        ?assertMatch({'EXIT', {{seccomp_violation, {os, getpid, 0}}, _}}, R2),
        D = policy(#{rules => [], default_action => {trap, no_such_broker}}),
        R3 = in_proc(fun() -> ok = seccomp:restrict(D), caught(fun() -> seccomp:apply(os, getpid, []) end) end),
        ?assertMatch({'EXIT', {{seccomp_violation, {os, getpid, 0}}, _}}, R3)
    after
        application:set_env(beam_seccomp, trap_timeout, 5000),
        exit(Silent, kill)
    end.

self_protection() ->
    Everything = policy(#{mode => blacklist, rules => []}),
    R = in_proc(fun() ->
        ok = seccomp:restrict(Everything),
        [seccomp:check(MFA) || MFA <- [{seccomp, restrict, 1}, {seccomp_nif, check, 3},
                                       {code, load_binary, 3}, {erlang, load_nif, 2},
                                       {erl_eval, exprs, 2}, {'Elixir.Code', eval_string, 1},
                                       {lists, map, 2}]]
    end),
    ?assertEqual([{deny, error} || _ <- lists:seq(1, 6)] ++ [allow], R),
    %% an unrestricted process is not affected by the guard
    ?assertEqual(allow, seccomp:check({code, which, 1})).

status_and_table() ->
    P = policy(#{rules => [lists], no_spawn => true}),
    Before = seccomp:table_size(),
    Self = self(),
    Pid = spawn(fun() ->
        ok = seccomp:restrict(P),
        _ = seccomp:check({lists, map, 2}),
        _ = seccomp:check({os, cmd, 1}),
        Self ! ready,
        receive stop -> ok end
    end),
    receive ready -> ok end,
    S = seccomp:status(Pid),
    ?assertMatch(#{mode := filter, no_spawn := true, inherit := true, checks := 2, denials := 1}, S),
    ?assertEqual([seccomp_policy:spec(P)], maps:get(layers, S)),
    ?assertEqual(Before + 1, seccomp:table_size()),
    Ref = monitor(process, Pid),
    Pid ! stop,
    receive {'DOWN', Ref, _, _, _} -> ok end,
    wait_until(fun() -> seccomp:table_size() =:= Before end),
    ?assertEqual({error, noproc}, seccomp:status(Pid)).

files_round_trip() ->
    Dir = filename:join(["/tmp", "seccomp_eunit_" ++ os:getpid()]),
    ok = filelib:ensure_dir(filename:join(Dir, "x")),
    try files_round_trip(Dir) after ok = file:del_dir_r(Dir) end.

files_round_trip(Dir) ->
    P = policy(#{mode => blacklist, no_spawn => true, default_action => {trap, my_broker},
                 rules => [os, {file, delete, 1}, #{match => {io, '_', '_'}, action => log}]}),
    lists:foreach(fun(Name) ->
        Path = filename:join(Dir, Name),
        ok = seccomp:policy_to_file(P, Path),
        {ok, Q} = seccomp:policy_from_file(Path),
        ?assertEqual(seccomp_policy:spec(P), seccomp_policy:spec(Q))
    end, ["p.json", "p.config"]),
    Bad = filename:join(Dir, "bad.json"),
    ok = file:write_file(Bad, <<"{\"mode\": \"whitelist\", ">>),
    ?assertMatch({error, {invalid_json, _}}, seccomp:policy_from_file(Bad)),
    ok = file:write_file(Bad, <<"{\"mode\": \"greylist\", \"no_spawn\": false, \"inherit\": true, "
                                "\"default_action\": \"error\", \"rules\": []}">>),
    ?assertMatch({error, {invalid_json, _}}, seccomp:policy_from_file(Bad)),
    BadTerms = filename:join(Dir, "bad.config"),
    ok = file:write_file(BadTerms, <<"#{mode => whitelist, rules => [\"os\"]}.">>),
    ?assertEqual({error, {invalid_policy, {rule, "os"}}}, seccomp:policy_from_file(BadTerms)),
    ?assertMatch({error, {file, _, enoent}}, seccomp:policy_from_file(filename:join(Dir, "none.json"))),
    WithPid = policy(#{default_action => {trap, self()}}),
    ?assertMatch({error, {unserialisable_broker, _}}, seccomp:policy_to_json(WithPid)),
    ?assertMatch({error, {unserialisable_broker, _}}, seccomp:policy_to_file(WithPid, filename:join(Dir, "x.config"))).

bad_input() ->
    Size = seccomp:table_size(),
    ?assertError({badarg, _}, seccomp:check(not_an_mfa)),
    ?assertError({badarg, _}, seccomp:check({m, f, -1})),
    ?assertError({badarg, _}, seccomp:check({m, f, 256})),
    ?assertError({badarg, _}, seccomp:check(<<"m">>, {m, f, 1})),
    ?assertError({badarg, _}, seccomp:apply("lists", reverse, [])),
    ?assertError({badarg, _}, seccomp:apply(lists, reverse, not_a_list)),
    ?assertError({badarg, _}, seccomp:spawn(not_a_fun)),
    ?assertEqual({error, {badarg, self}}, seccomp:restrict(self, #{})),
    ?assertEqual({error, {badarg, 42}}, seccomp:status(42)),
    ?assertMatch({error, {invalid_policy, _}}, seccomp:restrict(#{rules => {}})),
    Deep = lists:foldl(fun(_, Acc) -> [Acc] end, [], lists:seq(1, 100000)),
    ?assertMatch({error, {invalid_policy, _}}, seccomp:policy(#{rules => Deep})),
    Huge = [{mod, list_to_atom("f" ++ integer_to_list(I)), 1} || I <- lists:seq(1, 100000)],
    ?assertMatch({ok, _}, seccomp:policy(#{rules => Huge})),
    ?assertMatch({error, {invalid_json, _}}, seccomp:policy_from_json(<<255, 0, 1>>)),
    ?assertEqual(Size, seccomp:table_size()).

wait_until(F) -> wait_until(F, 200).
wait_until(F, 0) -> ?assert(F());
wait_until(F, N) ->
    case F() of
        true -> ok;
        false -> timer:sleep(10), wait_until(F, N - 1)
    end.
