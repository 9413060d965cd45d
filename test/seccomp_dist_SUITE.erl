%% Common Test suite: the `seccomp' distribution carrier between real nodes.
-module(seccomp_dist_SUITE).
-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1, init_per_testcase/2, end_per_testcase/2]).
-export([doors_are_refused/1, allowed_rpc_works/1, ipv6_works/1, cluster_housekeeping_works/1,
         outgoing_rpc_carries_the_policy/1, garbage_disconnects_only_that_node/1,
         filter_never_crashes_and_never_lets_refused_through/1]).

-include("caught.hrl").

all() ->
    [doors_are_refused, allowed_rpc_works, ipv6_works, cluster_housekeeping_works,
     outgoing_rpc_carries_the_policy, garbage_disconnects_only_that_node,
     filter_never_crashes_and_never_lets_refused_through].

-define(COOKIE, "seccomp_ct_cookie").
-define(POLICY, "#{default => #{rpc => [{erlang, node, 0}, {seccomp_rpc, run, 4}]}}").

init_per_suite(Config) ->
    Ebin = filename:dirname(code:which(seccomp)),
    [{ebin, Ebin} | Config].

end_per_suite(_Config) -> ok.

init_per_testcase(Case, Config) ->
    Dir = filename:join(?config(priv_dir, Config), atom_to_list(Case)),
    ok = filelib:ensure_path(Dir),
    [{dir, Dir} | Config].

end_per_testcase(_Case, Config) ->
    [caught(fun() -> peer:stop(P) end) || {peer, P} <- proplists:get_all_values(peers, Config)],
    ok.

%% A node; `seccomp' nodes use the carrier and the suite's policy.
start(Name, Kind, Config) ->
    Ebin = ?config(ebin, Config),
    Carrier = case Kind of
                  seccomp -> ["-proto_dist", "seccomp", "-beam_seccomp", "dist_policy", ?POLICY];
                  plain -> []
              end,
    {ok, Peer, Node} = peer:start(#{name => peer:random_name(Name), connection => standard_io,
                                    args => ["-setcookie", ?COOKIE, "-pa", Ebin,
                                             "-pa", filename:dirname(code:which(?MODULE)) | Carrier]}),
    ok = peer:call(Peer, application, set_env, [kernel, logger_level, error]),
    {ok, _} = peer:call(Peer, application, ensure_all_started, [beam_seccomp]),
    {Peer, Node}.

on(Peer, Fun) -> peer:call(Peer, erlang, apply, [Fun, []], 20000).

doors_are_refused(Config) ->
    {Prot, ProtNode} = start(protected, seccomp, Config),
    {Att, _} = start(attacker, plain, Config),
    File = filename:join(?config(dir, Config), "pwned"),
    Before = #{registered => on(Prot, fun() -> lists:sort(registered()) end),
               modules => on(Prot, fun() -> length(code:all_loaded()) end)},
    Touch = "touch " ++ File,
    Spec = #{id => pwned, start => {os, cmd, [Touch]}},
    Attempts =
        [{rpc_call, fun() -> rpc:call(ProtNode, os, cmd, [Touch], 500) end},
         {rpc_cast, fun() -> rpc:cast(ProtNode, os, cmd, [Touch]) end},
         {erpc_call, fun() -> erpc:call(ProtNode, os, cmd, [Touch], 500) end},
         {erpc_cast, fun() -> erpc:cast(ProtNode, os, cmd, [Touch]) end},
         {spawn_mfa, fun() -> spawn(ProtNode, os, cmd, [Touch]) end},
         {spawn_fun, fun() -> spawn(ProtNode, fun() -> os:cmd(Touch) end) end},
         {rex_call, fun() -> gen_server:call({rex, ProtNode}, {call, os, cmd, [Touch], self()}, 500) end},
         {rex_block_call, fun() -> gen_server:call({rex, ProtNode}, {block_call, os, cmd, [Touch], self()}, 500) end},
         {rex_cast, fun() -> gen_server:cast({rex, ProtNode}, {cast, os, cmd, [Touch], self()}) end},
         {net_kernel_spawn, fun() -> gen_server:call({net_kernel, ProtNode}, {spawn, os, cmd, [Touch], self()}, 500) end},
         {supervisor_start_child, fun() -> gen_server:call({kernel_sup, ProtNode}, {start_child, Spec}, 500) end},
         {app_controller, fun() -> {application_controller, ProtNode} ! {'$gen_call', {self(), make_ref()}, {set_env, kernel, pwned, true, []}} end},
         {init_stop, fun() -> {init, ProtNode} ! {stop, stop} end},
         {code_server, fun() -> {code_server, ProtNode} ! {code_call, self(), {load_binary, pwned, "pwned", <<>>}} end},
         {global_registrar, fun() -> {global_name_server, ProtNode} ! {'$gen_call', {self(), make_ref()}, {registrar, fun() -> os:cmd(Touch) end}} end},
         {sys_replace_state, fun() -> sys:replace_state({global_name_server, ProtNode}, fun(S) -> os:cmd(Touch), S end, 500) end},
         {exit2_to_system, fun() -> exit(rpc:call(ProtNode, erlang, whereis, [init], 500), kill) end},
         {fun_to_pid, fun() -> {global_name_server, ProtNode} ! {pwned, fun() -> ok end} end}],
    Results = on(Att, fun() ->
                              true = net_kernel:connect_node(ProtNode),
                              [{Name, caught(F)} || {Name, F} <- Attempts]
                      end),
    ct:log("attempts: ~p", [Results]),
    timer:sleep(500),
    ?assertNot(filelib:is_file(File)),
    ?assertEqual(ProtNode, on(Prot, fun() -> node() end)),
    ?assertEqual(maps:get(registered, Before), on(Prot, fun() -> lists:sort(registered()) end)),
    ?assertEqual(undefined, on(Prot, fun() -> application:get_env(kernel, pwned) end)),
    ?assert(on(Prot, fun() -> length(code:all_loaded()) end) - maps:get(modules, Before) < 5),
    Stats = on(Prot, fun() -> seccomp_dist:stats() end),
    ct:log("stats: ~p", [Stats]),
    ?assert(map_size(Stats) > 0).

allowed_rpc_works(Config) ->
    {_Prot, ProtNode} = start(protected, seccomp, Config),
    {Att, _} = start(client, plain, Config),
    ?assertEqual(ProtNode, on(Att, fun() -> rpc:call(ProtNode, erlang, node, [], 2000) end)),
    ?assertEqual(ProtNode, on(Att, fun() -> erpc:call(ProtNode, erlang, node, [], 2000) end)).

%% IPv6 loopback: the carrier with -seccomp_dist_inet6, a plain inet6_tcp client.
ipv6_works(Config) ->
    Ebin = ?config(ebin, Config),
    Common = ["-setcookie", ?COOKIE, "-pa", Ebin, "-pa", filename:dirname(code:which(?MODULE))],
    {ok, Prot, ProtNode} =
        peer:start(#{name => peer:random_name(p6), host => "::1", longnames => true,
                     connection => standard_io,
                     args => Common ++ ["-proto_dist", "seccomp", "-seccomp_dist_inet6",
                                        "-beam_seccomp", "dist_policy", ?POLICY]}),
    {ok, Client, _} =
        peer:start(#{name => peer:random_name(c6), host => "::1", longnames => true,
                     connection => standard_io, args => Common ++ ["-proto_dist", "inet6_tcp"]}),
    try
        ?assertEqual(ProtNode, peer:call(Client, rpc, call, [ProtNode, erlang, node, [], 2000])),
        ?assertEqual({badrpc, notsup}, peer:call(Client, rpc, call, [ProtNode, os, getpid, [], 2000]))
    after
        peer:stop(Client),
        peer:stop(Prot)
    end.

cluster_housekeeping_works(Config) ->
    Nodes = [start(list_to_atom("member" ++ integer_to_list(I)), seccomp, Config) || I <- [1, 2, 3]],
    [{A, _NodeA}, {B, NodeB}, {C, NodeC}] = Nodes,
    on(A, fun() -> pong = net_adm:ping(NodeB), pong = net_adm:ping(NodeC) end),
    %% global registration is seen everywhere
    Registered = on(A, fun() ->
                               Pid = spawn(fun() -> receive stop -> ok end end),
                               yes = global:register_name(seccomp_ct_global, Pid),
                               Pid
                       end),
    Seen = wait(fun() -> on(C, fun() -> global:whereis_name(seccomp_ct_global) end) =:= Registered end),
    ct:log("stats on C: ~p~nnodes: ~p", [on(C, fun() -> seccomp_dist:stats() end), on(C, fun() -> nodes() end)]),
    ?assert(Seen),
    %% pg groups
    on(B, fun() -> {ok, _} = pg:start(pg), ok end),
    on(C, fun() -> {ok, _} = pg:start(pg), ok end),
    Member = on(B, fun() -> P = spawn(fun() -> receive stop -> ok end end), ok = pg:join(g, P), P end),
    ?assert(wait(fun() -> on(C, fun() -> pg:get_members(g) end) =:= [Member] end)),
    %% monitor_node, links and messages
    Echo = on(B, fun() -> spawn(fun Loop() -> receive {From, M} -> From ! {echo, M}, Loop() end end) end),
    ?assertEqual({echo, hi}, on(C, fun() ->
                                           true = monitor_node(NodeB, true),
                                           link(Echo),
                                           Echo ! {self(), hi},
                                           receive R -> R after 2000 -> timeout end
                                   end)),
    ?assert(lists:member(NodeC, on(B, fun() -> nodes() end))),
    on(A, fun() -> global:send(seccomp_ct_global, stop) end),
    ok.

outgoing_rpc_carries_the_policy(Config) ->
    {A, _} = start(caller, seccomp, Config),
    {B, NodeB} = start(callee, seccomp, Config),
    Result = on(A, fun() ->
                           Self = self(),
                           spawn(fun() ->
                                         ok = seccomp:restrict(#{mode => blacklist, rules => [os]}),
                                         Local = caught(fun() -> seccomp:rpc_call(NodeB, os, getpid, []) end),
                                         Remote = seccomp:rpc_call(NodeB, erlang, apply, [os, getpid, []], 5000),
                                         Allowed = seccomp:rpc_call(NodeB, erlang, node, [], 5000),
                                         Self ! {done, Local, Remote, Allowed}
                                 end),
                           receive {done, L, R, Al} -> {L, R, Al} after 15000 -> timeout end
                   end),
    ct:log("~p~nstats on B: ~p", [Result, peer:call(B, seccomp_dist, stats, [])]),
    {{'EXIT', {{seccomp_violation, {os, getpid, 0}}, _}}, {badrpc, _}, NodeB} = Result,
    %% an unrestricted caller runs normally
    ?assertEqual(NodeB, on(A, fun() -> seccomp:rpc_call(NodeB, erlang, node, [], 5000) end)).

garbage_disconnects_only_that_node(Config) ->
    {Prot, ProtNode} = start(protected, seccomp, Config),
    Port = on(Prot, fun() -> {ok, Names} = erl_epmd:names(), hd([P || {N, P} <- Names, lists:prefix("protected", N)]) end),
    {ok, S} = gen_tcp:connect("localhost", Port, [binary, {packet, 2}, {active, false}]),
    ok = gen_tcp:send(S, crypto:strong_rand_bytes(200)),
    _ = gen_tcp:recv(S, 0, 2000),
    gen_tcp:close(S),
    ?assertEqual(ProtNode, on(Prot, fun() -> node() end)).

%% PropEr: random and mutated packets never crash the filter, and a spawn
%% request it accepts always names an allowed call.
filter_never_crashes_and_never_lets_refused_through(_Config) ->
    {ok, Policy} = seccomp_dist_filter:normalise(#{default => #{rpc => [{erlang, node, 0}]}}),
    Rules = seccomp_dist_filter:rules_for(a@b, Policy),
    Prop = proper:forall(packet(), fun(Packet) -> decision_ok(Packet, Rules) end),
    ?assert(proper:quickcheck(Prop, [{numtests, 3000}, quiet])).

decision_ok(Packet, Rules) ->
    case seccomp_dist_filter:decide(Packet, a@b, Rules) of
        {accept, spawn_request} -> spawned_mfa(Packet) =:= {erlang, node, 0};
        {accept, _} -> true;
        {refuse, _, _} -> true;
        {malformed, _} -> true
    end.

spawned_mfa(<<112, Rest/binary>>) ->
    {Ctl, Used} = binary_to_term(Rest, [used]),
    case element(5, Ctl) of
        {erpc, execute_call, 4} ->
            [_, M, F, A] = binary_to_term(binary:part(Rest, Used, byte_size(Rest) - Used)),
            {M, F, length(A)};
        MFA -> MFA
    end.

packet() ->
    proper_types:oneof([proper_types:binary(), valid_packet(), mutated(valid_packet())]).

valid_packet() ->
    proper_types:bind(
      proper_types:oneof([
          {proper_types:exactly(29), make_ref(), self(), self(), mfa(), proper_types:exactly([])},
          {proper_types:exactly(6), self(), proper_types:exactly(''), proper_types:oneof([rex, net_kernel, init, pg])},
          {proper_types:exactly(2), proper_types:exactly(''), self()},
          {proper_types:exactly(8), self(), self(), proper_types:exactly(kill)}]),
      fun(Ctl) ->
              Payload = case element(1, Ctl) of
                            29 -> term_to_binary([make_ref(), os, cmd, ["x"]]);
                            _ -> term_to_binary({'$gen_call', {self(), make_ref()}, {call, os, cmd, ["x"], self()}})
                        end,
              <<112, (term_to_binary(Ctl))/binary, Payload/binary>>
      end, false).

mfa() ->
    proper_types:oneof([{proper_types:exactly(erpc), proper_types:exactly(execute_call), proper_types:exactly(4)},
                        {proper_types:exactly(erlang), proper_types:exactly(node), proper_types:exactly(0)},
                        {proper_types:exactly(os), proper_types:exactly(cmd), proper_types:exactly(1)}]).

mutated(Gen) ->
    proper_types:bind({Gen, proper_types:non_neg_integer(), proper_types:byte()},
                      fun({Bin, Pos, Byte}) when byte_size(Bin) > 0 ->
                              P = Pos rem byte_size(Bin),
                              <<Pre:P/binary, _, Post/binary>> = Bin,
                              <<Pre/binary, Byte, Post/binary>>;
                         ({Bin, _, _}) -> Bin
                      end, false).

wait(F) -> wait(F, 100).
wait(F, 0) -> F();
wait(F, N) -> F() orelse (timer:sleep(50) =:= ok andalso wait(F, N - 1)).
