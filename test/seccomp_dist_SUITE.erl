%% Common Test suite: the `seccomp' distribution carrier between real nodes.
-module(seccomp_dist_SUITE).
-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").
-include_lib("public_key/include/public_key.hrl").
-include_lib("kernel/include/net_address.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1, init_per_testcase/2, end_per_testcase/2]).
-export([doors_are_refused/1, doors_by_guessed_pid_are_refused/1, request_shapes_are_enforced/1,
         link_then_exit_kills_nothing/1, allowed_rpc_works/1, given_pids_are_reachable/1,
         ipv6_works/1, cluster_housekeeping_works/1, outgoing_rpc_carries_the_policy/1,
         garbage_disconnects_only_that_node/1, claimed_lengths_reserve_no_memory/1,
         every_door_goes_to_the_filter/1,
         oversized_floods_from_peers_that_do_not_read/1,
         spawn_arity_is_the_payloads/1,
         control_messages_of_every_release/1, nothing_decoded_for_refused_headers/1,
         amplification_is_bounded/1, message_sizes_both_directions/1,
         oversized_messages_are_refused_to_the_sender/1,
         policy_files_at_boot_and_cycles/1, no_benchmark_switch/1,
         filter_never_crashes_and_never_lets_refused_through/1, the_driver_keeps_order_and_follows_the_policy/1,
         echoes_of_guessed_pids_show_nothing/1, closed_connections_leave_nothing_behind/1,
         aliases_are_judged_as_their_owners/1,
         cluster_stays_up/1,
         relays_are_judged_as_sends/1, spawn_arguments_carry_no_funs/1,
         global_names_never_point_at_local_processes/1, one_message_stops_nothing/1,
         atom_budget_outlives_connections/1, innocent_nodes_stay_connected/1,
         peer_fields_are_typed_and_owned/1, control_fields_are_typed/1,
         handshake_names_are_budgeted/1, doors_of_shown_processes_are_refused/1,
         io_servers_shown_to_peers_apply_nothing/1, pg_leaves_fit_what_the_peer_joined/1,
         global_helpers_are_judged_whatever_they_wait_in/1, peers_that_stop_reading_are_dropped/1,
         judged_messages_leave_nothing_behind/1, peers_demonitor_only_their_own_monitors/1,
         pg_lists_are_lists/1, global_names_of_others_stay/1, global_syncs_name_their_lock/1,
         global_sync_steps_come_once/1, global_replies_answer_their_call/1,
         new_servers_are_judged_by_name_at_once/1, connections_cost_little/1, deep_messages_cost_their_size/1,
         global_clashes_kill_nothing_on_third_nodes/1,
         what_was_shown_outlives_generations/1, one_peers_guesses_hide_nothing_from_others/1,
         peers_that_stop_reading_start_little/1,
         both_directions_at_once/1, tls_carrier_filters/1, tls_refuses_unproven_names/1]).
%% the callbacks of a gen_server and a supervisor on the protected node
-export([init/1, handle_call/3, handle_cast/2]).
%% run on the protected node by an allowed rpc
-export([keeper/0]).
%% run on the protected node
-export([starter/2]).
%% run on peer nodes
-export([decide_on/2, give/2, show_from/3, collect/1, keep_aliases/1, members_of/2, craft_pid/3, echo_loop/0, sample/2, log/2, typed_and_owned/0, atom_exists/1]).

all() ->
    [doors_are_refused, doors_by_guessed_pid_are_refused, request_shapes_are_enforced,
     link_then_exit_kills_nothing, allowed_rpc_works, given_pids_are_reachable, ipv6_works,
     cluster_housekeeping_works, outgoing_rpc_carries_the_policy, garbage_disconnects_only_that_node,
     spawn_arity_is_the_payloads, control_messages_of_every_release,
     nothing_decoded_for_refused_headers, amplification_is_bounded, message_sizes_both_directions,
     oversized_messages_are_refused_to_the_sender,
     claimed_lengths_reserve_no_memory,
     every_door_goes_to_the_filter, oversized_floods_from_peers_that_do_not_read,
     policy_files_at_boot_and_cycles, no_benchmark_switch,
     relays_are_judged_as_sends, spawn_arguments_carry_no_funs,
     global_names_never_point_at_local_processes, one_message_stops_nothing,
     atom_budget_outlives_connections, innocent_nodes_stay_connected, peer_fields_are_typed_and_owned,
     control_fields_are_typed, handshake_names_are_budgeted, doors_of_shown_processes_are_refused,
     io_servers_shown_to_peers_apply_nothing, pg_leaves_fit_what_the_peer_joined,
     global_helpers_are_judged_whatever_they_wait_in, peers_that_stop_reading_are_dropped,
     judged_messages_leave_nothing_behind, peers_demonitor_only_their_own_monitors,
     pg_lists_are_lists, global_names_of_others_stay, global_syncs_name_their_lock, global_sync_steps_come_once, global_replies_answer_their_call,
     new_servers_are_judged_by_name_at_once, connections_cost_little, deep_messages_cost_their_size,
     global_clashes_kill_nothing_on_third_nodes,
     what_was_shown_outlives_generations, one_peers_guesses_hide_nothing_from_others,
     peers_that_stop_reading_start_little, both_directions_at_once,
     tls_carrier_filters, tls_refuses_unproven_names,
     filter_never_crashes_and_never_lets_refused_through, the_driver_keeps_order_and_follows_the_policy,
     the_driver_keeps_order_and_follows_the_policy, cluster_stays_up].

-define(COOKIE, "seccomp_ct_cookie").
-define(POLICY, "#{default => #{rpc => [{erlang, node, 0}, {seccomp_rpc, run, 4}]}}").
%% The system processes an attacker would go for.
-define(SYSTEM, [rex, code_server, file_server_2, erl_prim_loader, application_controller,
                 logger, inet_db, init, kernel_sup, net_kernel, global_name_server, user]).

init_per_suite(Config) ->
    Ebin = filename:dirname(code:which(seccomp)),
    [{ebin, Ebin} | Config].

end_per_suite(_Config) -> ok.

init_per_testcase(Case, Config) ->
    Dir = filename:join(?config(priv_dir, Config), atom_to_list(Case)),
    ok = filelib:ensure_path(Dir),
    [{dir, Dir} | Config].

end_per_testcase(_Case, _Config) ->
    ok.

%% A node; `seccomp' nodes use the carrier and the suite's policy.
start(Name, Kind) -> start(Name, Kind, []).

start(Name, Kind, Extra) ->
    Ebin = filename:dirname(code:which(seccomp)),
    Carrier = case Kind of
                  seccomp -> ["-proto_dist", "seccomp", "-beam_seccomp", "dist_policy", ?POLICY];
                  {seccomp, Policy} -> ["-proto_dist", "seccomp", "-beam_seccomp", "dist_policy", Policy];
                  {inet_tls, OptFile} -> ["-proto_dist", "inet_tls", "-ssl_dist_optfile", OptFile];
                  {seccomp_tls, Policy, OptFile} ->
                      ["-proto_dist", "seccomp_tls", "-ssl_dist_optfile", OptFile,
                       "-beam_seccomp", "dist_policy", Policy];
                  plain -> []
              end,
    {ok, Peer, Node} = peer:start(#{name => peer:random_name(Name), connection => standard_io,
                                    args => ["-setcookie", ?COOKIE, "-pa", Ebin,
                                             "-pa", filename:dirname(code:which(?MODULE))
                                             | Carrier ++ Extra]}),
    ok = peer:call(Peer, application, set_env, [kernel, logger_level, error]),
    {ok, _} = peer:call(Peer, application, ensure_all_started, [beam_seccomp]),
    {Peer, Node}.

stop(Peers) -> [attempt(fun() -> peer:stop(P) end) || P <- Peers], ok.

%% The outcome of an attempt that may fail.
attempt(F) ->
    try F() catch Class:Why -> {Class, Why} end.

on(Peer, Fun) -> on(Peer, Fun, 30000).
on(Peer, Fun, Timeout) -> peer:call(Peer, erlang, apply, [Fun, []], Timeout).

%% What an attack could change on the protected node.
snapshot(Prot) ->
    on(Prot, fun() ->
                     #{registered => lists:sort(registered()),
                       system => [{N, whereis(N)} || N <- ?SYSTEM],
                       modules => length(code:all_loaded()),
                       env => application:get_env(kernel, pwned),
                       hosts => inet_db:get_rc(),
                       handlers => logger:get_handler_ids(),
                       ticktime => net_kernel:get_net_ticktime()}
             end).

no_harm(Prot, ProtNode, File, Before) ->
    ?assertNot(filelib:is_file(File)),
    ?assertEqual(ProtNode, on(Prot, fun() -> node() end)),
    After = snapshot(Prot),
    ?assertEqual(maps:without([modules], Before), maps:without([modules], After)),
    ?assertEqual(false, on(Prot, fun() -> code:is_loaded(pwned) end)).

%% The attacker's way to the protected node's creation: any pid it gets
%% back, here the one an allowed spawn request creates.
creation_of(Att, ProtNode) ->
    on(Att, fun() ->
                    true = net_kernel:connect_node(ProtNode),
                    ReqId = erlang:spawn_request(ProtNode, erlang, node, [], [monitor]),
                    receive {spawn_reply, ReqId, ok, Pid} -> creation(Pid) end
            end).

creation(Pid) ->
    case term_to_binary(Pid) of
        <<131, 88, 100, Len:16, _:Len/binary, _:64, Creation:32>> -> Creation;
        <<131, 88, 118, Len:16, _:Len/binary, _:64, Creation:32>> -> Creation;
        <<131, 88, _, Len, _:Len/binary, _:64, Creation:32>> -> Creation
    end.

%% A pid of `Node' with the given number, as an attacker builds it.
craft_pid(Node, Creation, Id) ->
    Name = atom_to_binary(Node, utf8),
    binary_to_term(<<131, 88, 119, (byte_size(Name)), Name/binary, Id:32, 0:32, Creation:32>>).

attacks(File) ->
    Touch = "touch " ++ File,
    Spec = #{id => pwned, start => {os, cmd, [Touch]}},
    Call = fun(Req) -> {'$gen_call', {self(), make_ref()}, Req} end,
    [{rex_call, Call({call, os, cmd, [Touch], user})},
     {rex_block_call, Call({block_call, os, cmd, [Touch], user})},
     {rex_cast, {'$gen_cast', {cast, os, cmd, [Touch], user}}},
     {rex_relay, {self(), {send, init, {stop, stop}}}},
     {net_kernel_spawn, Call({spawn, os, cmd, [Touch], user})},
     {start_child, Call({start_child, Spec})},
     {app_controller, Call({set_env, kernel, pwned, true, []})},
     {init_stop, {stop, stop}},
     {code_server, {code_call, self(), {load_binary, pwned, "pwned", <<>>}}},
     {file_server, Call({write_file, File, <<"x">>})},
     {prim_loader, {self(), {get_file, "/etc/passwd"}}},
     {logger, Call({add_handler, pwned, logger_std_h, #{}})},
     {inet_db, Call({add_host, {6, 6, 6, 6}, ["pwned"]})},
     {global_registrar, Call({registrar, fun() -> os:cmd(Touch) end})},
     {sys_replace_state, {system, {self(), make_ref()}, {replace_state, fun(S) -> os:cmd(Touch), S end}}},
     {fun_message, {pwned, fun() -> os:cmd(Touch) end}},
     {io_request, {io_request, self(), make_ref(), {put_chars, unicode, "pwned"}}}].

doors_are_refused(Config) ->
    {Prot, ProtNode} = start(protected, seccomp),
    {Att, _} = start(attacker, plain),
    File = filename:join(?config(dir, Config), "pwned"),
    Before = snapshot(Prot),
    Touch = "touch " ++ File,
    Attacks = attacks(File),
    Results = on(Att, fun() ->
                              true = net_kernel:connect_node(ProtNode),
                              Calls = [{rpc_call, attempt(fun() -> rpc:call(ProtNode, os, cmd, [Touch], 500) end)},
                                       {rpc_cast, rpc:cast(ProtNode, os, cmd, [Touch])},
                                       {erpc_call, attempt(fun() -> erpc:call(ProtNode, os, cmd, [Touch], 500) end)},
                                       {spawn_mfa, spawn(ProtNode, os, cmd, [Touch])},
                                       {spawn_fun, spawn(ProtNode, fun() -> os:cmd(Touch) end)},
                                       {exit2_init, attempt(fun() -> exit(rpc:call(ProtNode, erlang, whereis, [init], 500), kill) end)}],
                              Sends = [{Name, To, Msg} || {Name, Msg} <- Attacks, To <- ?SYSTEM,
                                                          _ <- [{To, ProtNode} ! Msg]],
                              {Calls, length(Sends)}
                      end),
    ct:log("attempts: ~p", [Results]),
    timer:sleep(500),
    no_harm(Prot, ProtNode, File, Before),
    Stats = on(Prot, fun() -> seccomp_dist:stats() end),
    ct:log("stats: ~p", [Stats]),
    ?assert(map_size(Stats) > 0),
    stop([Att, Prot]).

%% Pids of system processes are the same numbers on every fresh node: an
%% attacker builds them from the node's name and creation, and tries every
%% door on each of the first pids, by message and by signal.
doors_by_guessed_pid_are_refused(Config) ->
    {Prot, ProtNode} = start(protected, seccomp),
    {Att, _} = start(attacker, plain),
    File = filename:join(?config(dir, Config), "pwned"),
    Creation = creation_of(Att, ProtNode),
    Before = snapshot(Prot),
    SystemPids = [P || {_, P} <- maps:get(system, Before), is_pid(P)],
    MaxId = lists:max([element(2, pid_numbers(P)) || P <- SystemPids]) + 20,
    Attacks = attacks(File),
    Sent = on(Att, fun() ->
                           Pids = [?MODULE:craft_pid(ProtNode, Creation, Id) || Id <- lists:seq(0, MaxId)],
                           [Pid ! Msg || Pid <- Pids, {_, Msg} <- Attacks],
                           %% signals: monitors are harmless, the rest must not land
                           [erlang:group_leader(self(), Pid) || Pid <- Pids],
                           [erlang:monitor(process, Pid) || Pid <- Pids],
                           length(Pids)
                   end, 60000),
    ct:log("guessed ~p pids (creation ~p)", [Sent, Creation]),
    %% the guessed pids really are the system processes
    ?assert(lists:all(fun(P) -> element(2, pid_numbers(P)) =< MaxId end, SystemPids)),
    timer:sleep(1000),
    no_harm(Prot, ProtNode, File, Before),
    GLs = on(Prot, fun() -> [element(2, process_info(P, group_leader)) || P <- SystemPids] end),
    ?assertNot(lists:any(fun(GL) -> node(GL) =/= ProtNode end, GLs)),
    stop([Att, Prot]).

pid_numbers(Pid) ->
    [_, Id, Serial] = string:lexemes(pid_to_list(Pid), "<.>"),
    {0, list_to_integer(Id), list_to_integer(Serial)}.

%% A remote process links to guessed pids and exits with a reason (and
%% sends exit/2 with exit2 allowed): no local process dies.
link_then_exit_kills_nothing(_Config) ->
    {Prot, ProtNode} = start(protected, {seccomp, "#{default => #{exit2 => true, rpc => [{erlang, node, 0}]}}"}),
    {Att, _} = start(attacker, plain),
    Creation = creation_of(Att, ProtNode),
    Victim = on(Prot, fun() -> spawn(fun() -> receive never -> ok end end) end),
    %% global's per-connection helpers come and go while it syncs
    ok = on(Att, fun() -> global:sync() end),
    ok = on(Prot, fun() -> global:sync() end),
    {0, VictimId, _} = pid_numbers(Victim),
    Procs = fun() -> on(Prot, fun() -> timer:sleep(100),
                                       [{P, erlang:process_info(P, initial_call), erlang:process_info(P, [current_function, links, trap_exit])} || P <- processes(), P =/= self()]
                              end) end,
    Before = Procs(),
    Results = on(Att, fun() ->
                              Pids = [?MODULE:craft_pid(ProtNode, Creation, Id) || Id <- lists:seq(0, VictimId + 5)],
                              [begin
                                   {P, M} = spawn_monitor(fun() -> link(Pid), timer:sleep(50), exit(pwned) end),
                                   receive {'DOWN', M, process, P, R} -> R end
                               end || Pid <- Pids],
                              [exit(Pid, kill) || Pid <- Pids],
                              %% a refused link is answered as for a process that does not exist
                              process_flag(trap_exit, true),
                              link(hd(Pids)),
                              receive {'EXIT', _, Why} -> Why after 5000 -> no_exit end
                      end, 60000),
    ct:log("link answer: ~p", [Results]),
    ?assertEqual(noproc, Results),
    timer:sleep(500),
    ?assert(on(Prot, fun() -> is_process_alive(Victim) end)),
    Alive = [P || {P, _, _} <- Procs()],
    Died = [X || {P, _, _} = X <- Before, not lists:member(P, Alive)],
    ct:log("died: ~p", [Died]),
    ?assertEqual([], Died),
    %% an exit through a link a registered process made itself is the link's
    %% (the remote process exits only once it holds the link: signals from one
    %% process to another arrive in order, so `linked' comes after the link,
    %% and an exit before it would be answered `noproc')
    Remote = on(Att, fun() -> spawn(fun() -> receive linked -> ok end,
                                             receive die -> exit(boom) end
                                    end)
                     end),
    ok = on(Prot, fun() ->
                          Self = self(),
                          P = spawn(fun() ->
                                            process_flag(trap_exit, true),
                                            link(Remote),
                                            Remote ! linked,
                                            Self ! linked,
                                            receive {'EXIT', Remote, Why} -> ok end,
                                            receive {report, From} -> From ! {got, Why} end
                                    end),
                          register(seccomp_ct_linker, P),
                          receive linked -> ok end
                  end),
    on(Att, fun() -> Remote ! die end),
    ?assertEqual(boom, on(Prot, fun() -> seccomp_ct_linker ! {report, self()},
                                         receive {got, Why} -> Why after 3000 -> no_exit end
                                end)),
    stop([Att, Prot]).

%% Allowed names accept only their peers' protocol messages.
request_shapes_are_enforced(Config) ->
    {Prot, ProtNode} = start(protected, seccomp),
    {Other, OtherNode} = start(bystander, plain),
    {Att, _} = start(attacker, plain),
    File = filename:join(?config(dir, Config), "pwned"),
    pong = on(Other, fun() -> net_adm:ping(ProtNode) end),
    Before = snapshot(Prot),
    Call = fun(Name, Req) -> attempt(fun() -> gen_server:call({Name, ProtNode}, Req, 300) end) end,
    Results = on(Att, fun() ->
                              pong = net_adm:ping(ProtNode),
                              [{Req, Call(net_kernel, Req)} ||
                                  Req <- [{setopts, new, [{packet, 0}]}, {setopts, OtherNode, [{active, true}]},
                                          {disconnect, OtherNode}, {new_ticktime, 1, 1}, {new_ticktime, 1},
                                          {connect, normal, 'x@y'}, {allow, []}, {verbose, 9}, get_state,
                                          {apply, os, cmd, ["touch " ++ File]}]] ++
                              [{Req, Call(global_name_server, Req)} ||
                                  Req <- [{registrar, fun() -> ok end}, disconnect, stop,
                                          {sync, [OtherNode]}, high_level_trace_start]] ++
                              [{Req, Call(global_group, Req)} ||
                                  Req <- [{send, init, {stop, stop}}, {global_groups_changed, []}]] ++
                              [{Msg, {global_group, ProtNode} ! Msg} || Msg <- [{disconnect_node, OtherNode}]] ++
                              [{Msg, {pg, ProtNode} ! Msg} ||
                                  Msg <- [{join, self(), g, [list_to_pid("<0.1.0>")]},
                                          {'$gen_call', {self(), make_ref()}, {join_local, g, [self()]}}]] ++
                              [{Msg, {global_name_server, ProtNode} ! Msg} ||
                                  Msg <- [{lost_connection, OtherNode, 1, 1, ProtNode},
                                          {'$gen_cast', {in_sync, OtherNode, true}}]] ++
                              [{is_auth, Call(net_kernel, {is_auth, node()})}]
                      end, 60000),
    ct:log("~p", [Results]),
    ?assertEqual({is_auth, yes}, lists:last(Results)),
    timer:sleep(500),
    no_harm(Prot, ProtNode, File, Before),
    ?assert(on(Prot, fun() -> lists:member(OtherNode, nodes()) end)),
    ?assertEqual(ProtNode, on(Other, fun() -> rpc:call(ProtNode, erlang, node, [], 2000) end)),
    stop([Att, Other, Prot]).

allowed_rpc_works(_Config) ->
    {Prot, ProtNode} = start(protected, seccomp),
    {Att, _} = start(client, plain),
    ?assertEqual(ProtNode, on(Att, fun() -> rpc:call(ProtNode, erlang, node, [], 2000) end)),
    ?assertEqual(ProtNode, on(Att, fun() -> erpc:call(ProtNode, erlang, node, [], 2000) end)),
    ?assertEqual({badrpc, notsup}, on(Att, fun() -> rpc:call(ProtNode, os, getpid, [], 2000) end)),
    stop([Att, Prot]).

%% Pids this node showed a peer are reachable by it: messages, links,
%% monitors; gen_server replies to the peer's aliases come back.
given_pids_are_reachable(_Config) ->
    {Prot, ProtNode} = start(protected, seccomp),
    {Cli, CliNode} = start(client, plain),
    ok = on(Cli, fun() -> register(seccomp_ct_client, spawn(fun ?MODULE:echo_loop/0)), ok end),
    %% the protected node shows the client one pid, and keeps another to itself
    {Shown, Hidden} = on(Prot, fun() ->
                                       P = spawn(fun ?MODULE:echo_loop/0),
                                       H = spawn(fun ?MODULE:echo_loop/0),
                                       {seccomp_ct_client, CliNode} ! {shown, P},
                                       {P, H}
                               end),
    timer:sleep(200),
    Creation = creation(Shown),
    Result = on(Cli, fun() ->
                             {0, Id, _} = pid_numbers(Hidden),
                             Guessed = ?MODULE:craft_pid(ProtNode, Creation, Id),
                             Shown ! {self(), hi},
                             R1 = receive {echo, hi} -> echoed after 2000 -> timeout end,
                             Guessed ! {self(), hi},
                             R2 = receive {echo, hi} -> echoed after 1000 -> timeout end,
                             M = erlang:monitor(process, Guessed),
                             R3 = receive {'DOWN', M, process, _, Why} -> Why after 2000 -> no_down end,
                             link(Shown),
                             M2 = erlang:monitor(process, Shown),
                             R4 = receive {'DOWN', M2, process, _, _} -> down after 500 -> monitored end,
                             {R1, R2, R3, R4}
                     end),
    ?assertEqual({echoed, timeout, noproc, monitored}, Result),
    %% replies to gen_server calls come back to the caller's alias
    ?assertEqual(yes, on(Prot, fun() -> gen_server:call({net_kernel, CliNode}, {is_auth, node()}, 2000) end)),
    ?assert(on(Prot, fun() -> is_process_alive(Hidden) end)),
    stop([Cli, Prot]).

%% Over TCP the driver delivers messages to shown processes itself and hands
%% every other packet to the filter; the packets behind a judged one wait,
%% so a process gets a peer's messages in the order they were sent. A
%% policy change reaches the driver at once; a process that registers a
%% name the policy does not list is out of reach within the registry
%% copy's 100 ms, whatever it was shown.
the_driver_keeps_order_and_follows_the_policy(_Config) ->
    {Prot, ProtNode} = start(protected, seccomp),
    {Cli, CliNode} = start(client, plain),
    ok = on(Cli, fun() -> register(seccomp_ct_client, spawn(fun ?MODULE:echo_loop/0)), ok end),
    Sink = on(Prot, fun() ->
                            P = spawn(fun() -> ?MODULE:collect([]) end),
                            {seccomp_ct_client, CliNode} ! {shown, P},
                            P
                    end),
    timer:sleep(200),
    N = 3000,
    Send = fun(Is) ->
                   ok = on(Cli, fun() ->
                                        %% every 7th carries an atom the protected node has never seen
                                        [Sink ! case I rem 7 of
                                                    0 -> {I, binary_to_atom(<<"seccomp_ct_order_", (integer_to_binary(I))/binary>>)};
                                                    _ -> {I, plain}
                                                end || I <- Is],
                                        ok
                                end),
                   timer:sleep(300)
           end,
    Got = fun() -> on(Prot, fun() -> Sink ! {get, self()}, receive {got, L} -> L after 2000 -> timeout end end) end,
    Policy = fun(Rules) ->
                     ok = on(Prot, fun() ->
                                           seccomp_dist:set_policy(
                                             #{default => Rules#{rpc => [{erlang, node, 0}]}})
                                   end)
             end,
    Send(lists:seq(1, N)),
    ?assertEqual(lists:seq(1, N), Got()),
    RpcNode = fun() ->
                      on(Cli, fun() ->
                                      try erpc:call(ProtNode, erlang, node, [], 2000)
                                      catch error:Why -> {error, Why}
                                      end
                              end)
              end,
    ?assertEqual(ProtNode, RpcNode()),
    Policy(#{send => false}),
    Send([N + 1]),
    ok = Policy(#{}),
    Send([N + 2]),
    ?assertEqual(lists:seq(1, N) ++ [N + 2], Got()),
    ok = on(Prot, fun() -> seccomp_dist:set_policy(#{default => #{rpc => []}}) end),
    ?assertEqual({error, {erpc, notsup}}, RpcNode()),
    Policy(#{}),
    ?assertEqual(ProtNode, RpcNode()),
    true = on(Prot, fun() -> register(seccomp_ct_named, Sink) end),
    timer:sleep(300),
    Send([N + 3]),
    ?assertEqual(lists:seq(1, N) ++ [N + 2], Got()),
    stop([Cli, Prot]).

%% A pid a peer names that it was not shown (guessed here) stays out of its
%% reach when this node sends it back: in the reply of an allowed erpc call
%% (which carries the call's reference, any term), or in `global''s names
%% (a name a peer registered, synced to every node that connects later).
%% It is shown when the process itself talks to the peer.
echoes_of_guessed_pids_show_nothing(_Config) ->
    {Prot, ProtNode} = start(protected, seccomp),
    {A1, _} = start(attacker, plain),
    {A2, _} = start(attacker2, plain),
    {A3, _} = start(attacker3, plain),
    Victim = on(Prot, fun() -> spawn(fun ?MODULE:echo_loop/0) end),
    Creation = creation(Victim),
    {0, Id, _} = pid_numbers(Victim),
    Reaches = fun(Node) ->
                      on(Node, fun() ->
                                       ?MODULE:craft_pid(ProtNode, Creation, Id) ! {self(), hi},
                                       receive {echo, hi} -> reached after 1000 -> refused end
                               end)
              end,
    Echo = on(A1, fun() ->
                          G = ?MODULE:craft_pid(ProtNode, Creation, Id),
                          ReqId = erlang:spawn_request(ProtNode, erpc, execute_call, [[G], erlang, node, []],
                                                       [monitor]),
                          receive {'DOWN', ReqId, process, _, Why} -> Why after 2000 -> timeout end
                  end),
    ?assertMatch({[Victim], return, ProtNode}, Echo),
    ?assertEqual(refused, Reaches(A1)),
    Name = {seccomp_ct_trojan, [Victim]},
    yes = on(A2, fun() ->
                         pong = net_adm:ping(ProtNode),
                         global:register_name(Name, spawn(fun() -> receive stop -> ok end end))
                 end),
    timer:sleep(500),
    ?assert(lists:member(Name, on(Prot, fun() -> global:registered_names() end))),
    pong = on(A3, fun() -> net_adm:ping(ProtNode) end),
    timer:sleep(1000),
    ?assert(lists:member(Name, on(A3, fun() -> global:registered_names() end))),
    ?assertEqual(refused, Reaches(A3)),
    Client = on(A1, fun() -> spawn(fun ?MODULE:echo_loop/0) end),
    on(Prot, fun() -> Victim ! {Client, hello} end),
    timer:sleep(200),
    ?assertEqual(reached, Reaches(A1)),
    stop([A1, A2, A3, Prot]).

%% A connection that closes (the peer halts, or closes its socket) leaves
%% no process, port or socket of its own behind.
closed_connections_leave_nothing_behind(_Config) ->
    {Prot, ProtNode} = start(protected, seccomp),
    Count = fun() -> on(Prot, fun() -> {length(processes()), length(erlang:ports())} end) end,
    Cycle = fun(I) ->
                    {Peer, _} = start(list_to_atom("closer" ++ integer_to_list(I)), plain),
                    pong = on(Peer, fun() -> net_adm:ping(ProtNode) end),
                    stop([Peer])
            end,
    Cycle(0),
    timer:sleep(500),
    Before = Count(),
    lists:foreach(Cycle, lists:seq(1, 8)),
    timer:sleep(1000),
    ?assertEqual(Before, Count()),
    stop([Prot]).

collect(Got) ->
    receive
        {get, From} -> From ! {got, lists:reverse(Got)}, collect(Got);
        {I, _} when is_integer(I) -> collect([I | Got])
    end.

echo_loop() ->
    receive
        {From, Msg} when is_pid(From) -> From ! {echo, Msg}, echo_loop();
        stop -> ok;
        _ -> echo_loop()
    end.

%% What a peer was shown is kept in generations of 100,000 items: a live
%% process it was shown stays reachable however much is shown after it, a
%% reference (an alias) shown two generations ago no longer reaches its
%% process, and what the node keeps does not grow with what it shows.
what_was_shown_outlives_generations(_Config) ->
    {Prot, _ProtNode} = start(protected, seccomp),
    {Cli, CliNode} = start(client, plain),
    ok = on(Cli, fun() -> register(seccomp_ct_client, spawn(fun() -> ?MODULE:keep_aliases([]) end)), ok end),
    Client = {seccomp_ct_client, CliNode},
    %% A process waiting for a message at an alias it showed the client
    %% (it exits with what it got).
    Waiter = fun() ->
                     on(Prot, fun() ->
                                      Q = spawn(fun() ->
                                                        A = alias(),
                                                        Client ! {alias, A},
                                                        receive {A, Msg} -> exit({got, Msg}) after 60000 -> ok end
                                                end),
                                      receive after 200 -> ok end,
                                      Q
                              end)
             end,
    Old = Waiter(),
    Echo = on(Prot, fun() -> P = spawn(fun ?MODULE:echo_loop/0), Client ! {shown, P}, P end),
    %% Shows the client 300,000 fresh references (three generations).
    ShowMany = fun() ->
                       on(Prot, fun() ->
                                        [Client ! {noise, [make_ref() || _ <- lists:seq(1, 50000)]} || _ <- lists:seq(1, 6)],
                                        receive after 1000 -> ok end,
                                        {ok, Status} = file:read_file("/proc/self/status"),
                                        [Kb] = [binary_to_integer(string:trim(string:trim(V), trailing, " kB"))
                                                || <<"VmRSS:", V/binary>> <- binary:split(Status, <<"\n">>, [global])],
                                        Kb
                                end)
               end,
    Rss = [ShowMany() || _ <- lists:seq(1, 3)],
    Fresh = Waiter(),
    Echoed = on(Cli, fun() ->
                             [Fresh1, Old1] = ?MODULE:keep_aliases(get),
                             [A ! {A, hello} || A <- [Old1, Fresh1]],
                             Echo ! {self(), still_here},
                             receive {echo, still_here} -> echoed after 2000 -> timeout end
                     end),
    timer:sleep(300),
    ct:log("RSS after each 300,000 shown: ~p KB", [Rss]),
    ?assertEqual(echoed, Echoed),
    ?assertEqual({true, false}, on(Prot, fun() -> {is_process_alive(Old), is_process_alive(Fresh)} end)),
    [_, Rss2, Rss3] = Rss,
    ?assert(Rss3 - Rss2 < 32 * 1024),
    stop([Cli, Prot]).

%% On the client: keeps the aliases it is sent, newest first; `get' (in
%% another process) asks the registered keeper for them.
keep_aliases(get) ->
    seccomp_ct_client ! {get, self()},
    receive {aliases, As} -> As end;
keep_aliases(As) ->
    receive
        {alias, A} -> keep_aliases([A | As]);
        {get, From} -> From ! {aliases, As}, keep_aliases(As);
        _ -> keep_aliases(As)
    end.

%% A pid a peer names before it was shown is not shown to that peer by being
%% sent back; but other peers still are shown it: a peer that guessed the
%% pid of a process joined to a pg group and registered in global made
%% every later node unable to reach it (pg and global tell every peer of
%% their members in messages the process itself does not send).
one_peers_guesses_hide_nothing_from_others(_Config) ->
    PgArgs = ["-kernel", "start_pg", "true"],
    {Prot, ProtNode} = start(protected, seccomp, PgArgs),
    Svc = on(Prot, fun() ->
                           P = spawn(fun ?MODULE:echo_loop/0),
                           ok = pg:join(seccomp_ct_group, P),
                           yes = global:register_name(seccomp_ct_svc, P),
                           P
                   end),
    C = seccomp_dist_raw:connect(ProtNode, seccomp_ct_guesser@localhost, ?COOKIE),
    Me = seccomp_dist_raw:pid(C, 3),
    {0, Id, _} = pid_numbers(Svc),
    Guesses = [?MODULE:craft_pid(ProtNode, creation(Svc), I) || I <- lists:seq(max(1, Id - 50), Id + 50)],
    [ok = seccomp_dist_raw:send(C, {22, Me, G}, hello) || G <- Guesses],
    timer:sleep(500),
    seccomp_dist_raw:close(C),
    {Fresh, _} = start(fresh, plain, PgArgs),
    Seen = on(Fresh, fun() ->
                             true = net_kernel:connect_node(ProtNode),
                             ok = global:sync(),
                             Members = ?MODULE:members_of(seccomp_ct_group, 50),
                             [P ! {self(), hi} || P <- Members],
                             Echo = receive {echo, hi} -> echoed after 2000 -> timeout end,
                             {Members, Echo, global:whereis_name(seccomp_ct_svc)}
                     end),
    ?assertEqual({[Svc], echoed, Svc}, Seen),
    stop([Fresh, Prot]).

%% On a peer: the members of a pg group once there are some (tries every 100 ms).
members_of(Group, Tries) ->
    case pg:get_members(Group) of
        [] when Tries > 0 -> timer:sleep(100), members_of(Group, Tries - 1);
        Members -> Members
    end.

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
        stop([Client, Prot])
    end.

cluster_housekeeping_works(_Config) ->
    Nodes = [start(list_to_atom("member" ++ integer_to_list(I)), seccomp) || I <- [1, 2, 3]],
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
    %% a pid learnt through pg is reachable; monitor_node, links and messages
    Echo = on(B, fun() -> P = spawn(fun ?MODULE:echo_loop/0), ok = pg:join(echo, P), P end),
    ?assert(wait(fun() -> on(C, fun() -> pg:get_members(echo) end) =:= [Echo] end)),
    ?assertEqual({echo, hi}, on(C, fun() ->
                                           true = monitor_node(NodeB, true),
                                           [E] = pg:get_members(echo),
                                           link(E),
                                           E ! {self(), hi},
                                           receive R -> R after 2000 -> timeout end
                                   end)),
    ?assert(lists:member(NodeC, on(B, fun() -> nodes() end))),
    on(A, fun() -> global:send(seccomp_ct_global, stop) end),
    stop([P || {P, _} <- Nodes]).

outgoing_rpc_carries_the_policy(_Config) ->
    {A, _} = start(caller, seccomp),
    {B, NodeB} = start(callee, seccomp),
    Result = on(A, fun() ->
                           Self = self(),
                           spawn(fun() ->
                                         ok = seccomp:restrict(#{mode => blacklist, rules => [os]}),
                                         Local = attempt(fun() -> seccomp:rpc_call(NodeB, os, getpid, []) end),
                                         %% The callee derives the denylist's closure at its
                                         %% first check (seconds on a loaded machine).
                                         Remote = seccomp:rpc_call(NodeB, erlang, apply, [os, getpid, []], 60000),
                                         Allowed = seccomp:rpc_call(NodeB, erlang, node, [], 60000),
                                         Self ! {done, Local, Remote, Allowed}
                                 end),
                           receive {done, L, R, Al} -> {L, R, Al} after 130000 -> timeout end
                   end),
    ct:log("~p~nstats on B: ~p", [Result, peer:call(B, seccomp_dist, stats, [])]),
    {{error, {seccomp_violation, {os, getpid, 0}}}, {badrpc, _}, NodeB} = Result,
    ?assertEqual(NodeB, on(A, fun() -> seccomp:rpc_call(NodeB, erlang, node, [], 5000) end)),
    stop([A, B]).

%% What a connection costs the node while it waits for its handshake, and
%% once it is an idle authenticated peer (OTP's own carrier: about 9 KB and
%% 2 processes, 16 KB). Connections are cheap to open: their fixed cost is
%% what many of them add up to.
connections_cost_little(_Config) ->
    {Prot, ProtNode} = start(protected, seccomp),
    Port = on(Prot, fun() -> {ok, Names} = erl_epmd:names(), hd([P || {N, P} <- Names, lists:prefix("protected", N)]) end),
    Measure = fun() -> on(Prot, fun() -> {erlang:memory(total), erlang:system_info(process_count)} end) end,
    PerConnection = fun(N, Open) ->
                            {M0, P0} = Measure(),
                            Conns = Open(N),
                            timer:sleep(1500),
                            {M1, P1} = Measure(),
                            {Conns, (M1 - M0) div N, (P1 - P0) / N}
                    end,
    {Waiting, WaitingBytes, WaitingProcs} =
        PerConnection(200, fun(N) -> [S || _ <- lists:seq(1, N),
                                           {ok, S} <- [gen_tcp:connect("localhost", Port, [binary, {active, false}])]] end),
    {Idle, IdleBytes, IdleProcs} =
        PerConnection(50, fun(N) -> [seccomp_dist_raw:connect(ProtNode, list_to_atom("seccomp_ct_idle" ++ integer_to_list(I) ++ "@localhost"), ?COOKIE)
                                     || I <- lists:seq(1, N)] end),
    ct:log("waiting for the handshake: ~p bytes, ~p processes; idle peer: ~p bytes, ~p processes",
           [WaitingBytes, WaitingProcs, IdleBytes, IdleProcs]),
    ?assertEqual({200, 50}, {length(Waiting), length(Idle)}),
    ?assert(WaitingBytes < 32 * 1024 andalso WaitingProcs =< 3),
    ?assert(IdleBytes < 96 * 1024 andalso IdleProcs =< 4),
    [gen_tcp:close(S) || S <- Waiting],
    [seccomp_dist_raw:close(C) || C <- Idle],
    stop([Prot]).

garbage_disconnects_only_that_node(_Config) ->
    {Prot, ProtNode} = start(protected, seccomp),
    Port = on(Prot, fun() -> {ok, Names} = erl_epmd:names(), hd([P || {N, P} <- Names, lists:prefix("protected", N)]) end),
    {ok, S} = gen_tcp:connect("localhost", Port, [binary, {packet, 2}, {active, false}]),
    ok = gen_tcp:send(S, crypto:strong_rand_bytes(200)),
    _ = gen_tcp:recv(S, 0, 2000),
    gen_tcp:close(S),
    ?assertEqual(ProtNode, on(Prot, fun() -> node() end)),
    stop([Prot]).

%% A frame's length header only claims bytes: a peer that sends headers of
%% frames just under `max_message_bytes' and nothing else makes the node
%% reserve no more than it sent (an allocation of each claimed length, where
%% address space is limited, would fail and abort the node).
claimed_lengths_reserve_no_memory(_Config) ->
    {Prot, ProtNode} = start(protected, seccomp),
    VmSize = fun() ->
                     on(Prot, fun() ->
                                      {ok, Status} = file:read_file("/proc/self/status"),
                                      [Kb] = [binary_to_integer(string:trim(string:trim(V), trailing, " kB"))
                                              || <<"VmSize:", V/binary>> <- binary:split(Status, <<"\n">>, [global])],
                                      Kb * 1024
                              end)
             end,
    Before = VmSize(),
    Claimed = 256 * 1024 * 1024 - 1,
    Sockets = [raw_connect(ProtNode, "claimer" ++ integer_to_list(I)) || I <- lists:seq(1, 8)],
    %% Once the connections are up (carried by the driver).
    timer:sleep(1000),
    [ok = gen_tcp:send(S, <<Claimed:32>>) || S <- Sockets],
    timer:sleep(1000),
    Grown = VmSize() - Before,
    ct:pal("address space grew ~w bytes for 8 claims of ~w bytes", [Grown, Claimed]),
    ?assert(Grown < Claimed),
    ?assertEqual(ProtNode, on(Prot, fun() -> node() end)),
    [gen_tcp:close(S) || S <- Sockets],
    stop([Prot]).

%% A process that keeps what it is sent (its pid is shown to whoever calls).
keeper() -> spawn(fun() -> keep([]) end).

%% The driver delivers messages to processes a peer holds without the
%% filter, except those that start with a door's atom (a request of an OTP
%% protocol): every door the filter knows (`seccomp_dist_filter:doors/0`)
%% reaches the filter, which refuses the requests it never lets through
%% (each door needs one here).
every_door_goes_to_the_filter(_Config) ->
    Policy = "#{default => #{rpc => [{seccomp_dist_SUITE, keeper, 0}]}}",
    {Prot, ProtNode} = start(protected, {seccomp, Policy}),
    {Att, AttNode} = start(attacker, plain),
    Doors = [binary_to_atom(D) || D <- seccomp_dist_filter:doors()],
    ?assert(length(Doors) >= 6),
    Keeper = on(Att, fun() ->
                             K = erpc:call(ProtNode, seccomp_dist_SUITE, keeper, []),
                             From = {self(), make_ref()},
                             Refused = #{'$gen_call' => {'$gen_call', From, {start_child, x}},
                                         '$gen_cast' => {'$gen_cast', {start_child, x}},
                                         system => {system, From, get_state},
                                         'EXIT' => {'EXIT', self(), shutdown},
                                         io_request => {io_request, self(), make_ref(), {get_line, ''}},
                                         file_request => {file_request, self(), make_ref(), close}},
                             %% twice: the first of a kind may go to the filter anyway
                             [K ! {before, I} || I <- [1, 2]],
                             [K ! maps:get(Door, Refused) || Door <- Doors, _ <- [1, 2]],
                             K ! {after_doors, 1},
                             K
                     end),
    Kept = fun() -> on(Prot, fun() -> Keeper ! {get, self()}, receive {kept, K} -> K end end) end,
    ok = eventually(fun() -> lists:member({after_doors, 1}, Kept()) end),
    ?assertEqual([{before, 1}, {before, 2}, {after_doors, 1}], Kept()),
    #{{send, refused} := Refusals} = on(Prot, fun() -> maps:get(AttNode, seccomp_dist:stats()) end),
    ?assert(Refusals >= 2 * length(Doors)),
    stop([Prot, Att]).

%% A process that keeps what it is sent, and hands it over on `{get, From}'.
keep(Kept) ->
    receive
        {get, From} -> From ! {kept, lists:reverse(Kept)}, keep(Kept);
        Msg -> keep([Msg | Kept])
    end.

%% `Cond' holds within 5 seconds.
eventually(Cond) -> eventually(Cond, 50).
eventually(Cond, 0) -> Cond() orelse error(timeout), ok;
eventually(Cond, N) ->
    case Cond() of
        true -> ok;
        false -> timer:sleep(100), eventually(Cond, N - 1)
    end.

%% A distribution connection to `Node' as `Name' (on its host) after the
%% handshake, speaking raw bytes (this runtime's default flags, the suite's cookie).
raw_connect(Node, Name) ->
    [Alive, Host] = string:split(atom_to_list(Node), "@"),
    {port, Port, _} = erl_epmd:port_please(Alive, Host),
    {ok, S} = gen_tcp:connect(Host, Port, [binary, {packet, 2}, {active, false}]),
    Me = list_to_binary(Name ++ "@" ++ Host),
    Flags = element(2, erts_internal:get_dflags()),
    ok = gen_tcp:send(S, <<$N, Flags:64, 1:32, (byte_size(Me)):16, Me/binary>>),
    {ok, <<"sok">>} = gen_tcp:recv(S, 0, 5000),
    {ok, <<$N, _Flags:64, Challenge:32, _Creation:32, _/binary>>} = gen_tcp:recv(S, 0, 5000),
    Digest = erlang:md5([?COOKIE, integer_to_list(Challenge)]),
    ok = gen_tcp:send(S, <<$r, 42:32, Digest/binary>>),
    {ok, <<$a, _:16/binary>>} = gen_tcp:recv(S, 0, 5000),
    ok = inet:setopts(S, [{packet, raw}]),
    S.

%%% The filter on packets as a peer would send them -----------------------------------

context() -> context(#{}).
context(Rules) ->
    ok = budget_table(),
    {ok, Policy} = seccomp_dist_policy:normalise(#{default => Rules#{rpc => [{erlang, node, 0}]}}),
    seccomp_dist_filter:context(peer@host, seccomp_dist_policy:rules_for(peer@host, Policy), seccomp_dist_caps:new()).

%% Show the peer local pids and aliases, as a message the calling process
%% sends it would (the caller owns the aliases).
give(Ctx, Items) -> show_from(Ctx, self(), Items).

show_from(Ctx, Sender, Items) ->
    seccomp_dist_caps:show(<<112, (term_to_binary({22, Sender, x}))/binary, (term_to_binary(Items))/binary>>,
                           maps:get(caps, Ctx)).

%% An alias is judged as the process that made it and sent it to the peer:
%% a reply or an exit sent to the alias of a process the policy does not
%% name (as `global''s helpers, which call peers) is refused; an alias no
%% local process sent has no owner and is refused too.
aliases_are_judged_as_their_owners(_Config) ->
    Ctx = context(#{exit2 => true}),
    P = peer_pid(),
    Parent = self(),
    Owner = fun(Name) ->
                    Pid = spawn(fun() ->
                                        _ = Name =:= none orelse register(Name, self()),
                                        Parent ! {alias, self(), alias()},
                                        receive stop -> ok end
                                end),
                    receive {alias, Pid, A} -> {Pid, A} end
            end,
    {Sys, SysAlias} = Owner(seccomp_ct_alias_owner),
    {Plain, PlainAlias} = Owner(none),
    ok = show_from(Ctx, Sys, [SysAlias]),
    ok = show_from(Ctx, Plain, [PlainAlias]),
    Unowned = alias(),
    ok = seccomp_dist_caps:show(<<112, (term_to_binary({2, '', x}))/binary, (term_to_binary(Unowned))/binary>>,
                                maps:get(caps, Ctx)),
    Reply = fun(A, R) -> verdict(packet({33, P, A}, {[alias | A], R}), Ctx) end,
    Exit = fun(A) -> verdict(packet({37, 16 bor 4, P, A}, kill), Ctx) end,
    ?assertMatch({refuse, send, _, _}, Reply(SysAlias, garbage)),
    ?assertMatch({refuse, exit2, _, _}, Exit(SysAlias)),
    ?assertMatch({refuse, send, _, _}, Reply(Unowned, ok)),
    ?assertMatch({accept, send, _}, Reply(PlainAlias, ok)),
    ?assertMatch({accept, exit2, _}, Exit(PlainAlias)),
    [X ! stop || X <- [Sys, Plain]],
    ok.

%% A monitor a local process set up on the peer's process `P'.
monitored(Ctx, P, Ref) ->
    seccomp_dist_caps:show(<<112, (term_to_binary({19, self(), P, Ref}))/binary>>, maps:get(caps, Ctx)).

%% The atom budget shared by all connections lives as long as distribution;
%% here, as long as a process of its own.
budget_table() ->
    case ets:info(seccomp_dist_budget) of
        undefined ->
            Self = self(),
            spawn(fun() -> ok = seccomp_dist_budget:init(), Self ! budget, receive never -> ok end end),
            receive budget -> ok end;
        _ -> ok
    end.

%% A pid of the peer node.
peer_pid() -> craft_pid(peer@host, 7, 42).

packet(Ctl) -> <<112, (term_to_binary(Ctl))/binary>>.
packet(Ctl, Payload) -> <<112, (term_to_binary(Ctl))/binary, (term_to_binary(Payload))/binary>>.

verdict(Packet, Ctx) -> element(1, seccomp_dist_filter:decide(Packet, Ctx)).

decide_on(Packet, Ctx) -> seccomp_dist_filter:decide(Packet, Ctx).

%% The VM applies the payload's argument list: that is what is checked.
spawn_arity_is_the_payloads(_Config) ->
    Ctx = context(),
    P = peer_pid(),
    Spawn = fun(MFA, Args) -> verdict(packet({29, make_ref(), P, P, MFA, [monitor]}, Args), Ctx) end,
    ?assertMatch({accept, spawn_request, _}, Spawn({erlang, node, 0}, [])),
    ?assertMatch({refuse, spawn_request, _, <<112, _/binary>>}, Spawn({erlang, node, 0}, [x])),
    ?assertMatch({refuse, spawn_request, _, _}, Spawn({os, cmd, 1}, ["id"])),
    ?assertMatch({refuse, spawn_request, _, _}, Spawn({erlang, node, 1}, [])),
    ?assertMatch({accept, spawn_request, _}, Spawn({erpc, execute_call, 4}, [make_ref(), erlang, node, []])),
    ?assertMatch({refuse, spawn_request, _, _}, Spawn({erpc, execute_call, 4}, [make_ref(), os, cmd, ["id"]])),
    ?assertMatch({refuse, spawn_request, _, _}, Spawn({erpc, execute_call, 4}, [make_ref(), erlang, node, [], x])),
    %% options that would let the peer size the process
    ?assertMatch({refuse, spawn_request, _, _},
                 verdict(packet({29, make_ref(), P, P, {erlang, node, 0}, [{min_heap_size, 1 bsl 40}]}, []), Ctx)).

%% Every control message OTP 25-29 define is filtered like its older form;
%% an unknown one is refused without closing the connection.
control_messages_of_every_release(_Config) ->
    Ctx = context(),
    P = peer_pid(),
    Init = whereis(init),
    Given = spawn(fun() -> receive stop -> ok end end),
    GivenAlias = alias(),
    ok = ?MODULE:give(Ctx, [Given, GivenAlias]),
    %% a monitor's reference is made by the monitoring side's node
    Ref = binary_to_term(<<131, 90, 3:16, 119, 9, "peer@host", 42:32, 1:32, 2:32, 3:32>>),
    Msg = {hello, 1},
    %% a sequential-trace token as the runtime sends it
    T = {2, label, 7, P, 6},
    Accepted = [{2, '', Given}, {12, '', Given, T}, {22, P, Given}, {23, P, Given, T},
                {33, P, GivenAlias}, {34, P, GivenAlias, T},
                {37, 0, P, Given}, {37, 1, P, Given}, {37, 4, P, GivenAlias}, {37, 6, P, GivenAlias, T}],
    [?assertMatch({accept, send, _}, verdict(packet(C, Msg), Ctx), C) || C <- Accepted],
    Refused = [{2, '', Init}, {22, P, Init}, {33, P, make_ref()}, {37, 0, P, Init}, {37, 1, P, Init},
               {37, 4, P, make_ref()}, {37, 8, P, init}, {37, 16, P, Given}, {37, 17, P, Init},
               {6, P, '', init}, {16, P, '', init, T}, {37, 64, P, Given}],
    [?assertMatch({refuse, _, _, _}, verdict(packet(C, Msg), Ctx), C) || C <- Refused],
    %% signals to a given pid pass, to a system pid do not
    [?assertMatch({accept, _, _}, verdict(packet(C), Ctx), C) ||
        C <- [{1, P, Given}, {4, P, Given}, {35, 1, P, Given}, {36, 1, P, Given}, {3, P, Given, normal},
              {19, P, Given, Ref}, {20, P, Given, Ref}, {19, P, rex, Ref}, {19, P, whereis(rex), Ref}, {5}]],
    [?assertMatch({refuse, _, _, _}, verdict(packet(C), Ctx), C) ||
        C <- [{1, P, Init}, {3, P, Init, kill}, {13, P, Init, T, kill}, {8, P, Given, kill},
              {8, P, Init, kill}, {7, P, Init}, {19, P, Init, Ref}, {19, P, init, Ref},
              {1, self(), Given}, {19, P, Given, make_ref()}, {20, P, Given, make_ref()},
              {21, P, Given, make_ref(), noproc}]],
    %% a monitor exit fires a monitor this node set up on the peer, once
    Mine = make_ref(),
    ok = monitored(Ctx, P, Mine),
    ?assertMatch({accept, _, _}, verdict(packet({21, P, Given, Mine, noproc}), Ctx)),
    ?assertMatch({refuse, _, _, _}, verdict(packet({21, P, Given, Mine, noproc}), Ctx)),
    ?assertMatch({refuse, _, _, _}, verdict(packet({24, P, Init}, kill), Ctx)),
    ?assertMatch({refuse, _, _, _}, verdict(packet({26, P, Given}, kill), Ctx)),
    %% unknown control messages: refused, not malformed (the connection stays)
    [?assertMatch({refuse, unknown_control, _, none}, verdict(packet(C), Ctx), C) ||
        C <- [{38, P, Given}, {99}, {0, a}, {1000, x, y}]],
    %% malformed packets disconnect
    [?assertMatch({malformed, _}, verdict(B, Ctx), B) ||
        B <- [<<1, 2, 3>>, <<112>>, <<112, 131, 104, 3>>, <<112, 131, 82, 0>>,
              <<112, (term_to_binary(x))/binary>>,
              <<(packet({2, '', Given}, Msg))/binary, 0>>,
              <<112, (term_to_binary({2, '', Given}))/binary, 131, 80, 0, 0, 1, 0, 1, 2>>]],
    Given ! stop.

%% Payloads are not even scanned when the header is refused (dead pids,
%% refused destinations), so no atom is created for them.
nothing_decoded_for_refused_headers(_Config) ->
    {Prot, _} = start(protected, seccomp),
    Result = on(Prot, fun() ->
                              Ctx = context(),
                              P = peer_pid(),
                              Dead = spawn(fun() -> ok end),
                              timer:sleep(50),
                              Atoms = fun(Prefix, N) -> new_atoms_term(Prefix, N) end,
                              %% loading the filter's modules creates atoms of their own
                              _ = ?MODULE:decide_on(<<(packet({2, '', Dead}))/binary, (Atoms(<<"warm">>, 1))/binary>>, Ctx),
                              _ = ?MODULE:decide_on(<<(packet({6, P, '', init}))/binary, (Atoms(<<"warm">>, 1))/binary>>, Ctx),
                              Before = erlang:system_info(atom_count),
                              V1 = ?MODULE:decide_on(<<(packet({2, '', Dead}))/binary, (Atoms(<<"dead">>, 5000))/binary>>, Ctx),
                              V2 = ?MODULE:decide_on(<<(packet({6, P, '', init}))/binary, (Atoms(<<"init">>, 5000))/binary>>, Ctx),
                              {V1, V2, erlang:system_info(atom_count) - Before}
                      end),
    ct:log("~p", [Result]),
    ?assertMatch({{{refuse, send, _, none}, 0}, {{refuse, send, _, none}, 0}, 0}, Result),
    stop([Prot]).

%% A term naming N atoms this node has never seen (as a peer encodes them).
new_atoms_term(Prefix, N) ->
    Atoms = << <<119, (byte_size(A)), A/binary>> || I <- lists:seq(1, N),
                                                   A <- [<<Prefix/binary, (integer_to_binary(I))/binary,
                                                           (integer_to_binary(erlang:unique_integer([positive])))/binary>>] >>,
    <<131, 108, N:32, Atoms/binary, 106>>.

%% Atoms beyond the connection's budget, memory beyond the bound, and
%% compressed terms are refused before decoding.
amplification_is_bounded(_Config) ->
    {Prot, _} = start(protected, seccomp),
    Result = on(Prot, fun() ->
                              Given = spawn(fun() -> receive stop -> ok end end),
                              Ctx0 = context(#{max_new_atoms => 100, max_message_bytes => 1 bsl 20}),
                              Ctx = Ctx0#{},
                              ok = ?MODULE:give(Ctx, [Given]),
                              _ = ?MODULE:decide_on(<<(packet({2, '', Given}))/binary, (new_atoms_term(<<"warm">>, 1))/binary>>, Ctx),
                              Before = erlang:system_info(atom_count),
                              Over = ?MODULE:decide_on(<<(packet({2, '', Given}))/binary, (new_atoms_term(<<"amp">>, 101))/binary>>, Ctx),
                              %% the budget is the node's, whatever the connection: one atom is spent
                              Under = ?MODULE:decide_on(<<(packet({2, '', Given}))/binary, (new_atoms_term(<<"amp">>, 99))/binary>>, Ctx),
                              Reconnected = context(#{max_new_atoms => 100}),
                              ok = ?MODULE:give(Reconnected, [Given]),
                              Spent = ?MODULE:decide_on(<<(packet({2, '', Given}))/binary, (new_atoms_term(<<"more">>, 1))/binary>>,
                                                        Reconnected),
                              Created = erlang:system_info(atom_count) - Before,
                              %% 2 MiB of nils in a list: 32 MiB on the heap
                              Big = <<131, 108, (2 bsl 20):32, (binary:copy(<<106>>, 2 bsl 20))/binary, 106>>,
                              Mem = ?MODULE:decide_on(<<(packet({2, '', Given}))/binary, Big/binary>>, Ctx),
                              Zip = term_to_binary(binary:copy(<<0>>, 20 bsl 20), [compressed]),
                              Compressed = ?MODULE:decide_on(<<(packet({2, '', Given}))/binary, Zip/binary>>, Ctx),
                              {Over, Under, Spent, Created, Mem, Compressed, erlang:memory(total) < 500 bsl 20}
                      end),
    ct:log("~P", [Result, 12]),
    ?assertMatch({{{refuse, send, atom_budget, none}, 0}, {{accept, send, 99}, 99},
                  {{refuse, send, atom_budget, none}, 0}, 0,
                  {{refuse, send, {too_large, _}, none}, 0}, {{malformed, _}, 0}, true}, Result),
    stop([Prot]).

%% A message to a named process is decoded and judged: a deeply nested one
%% (two bytes a level) costs the receiver about what the decoded term takes,
%% not many times that (a walk for funs with a call a level took about 14
%% times, and a node with a memory limit died of it). With a fun at the
%% bottom too, and within `max_message_bytes'.
deep_messages_cost_their_size(_Config) ->
    {Prot, ProtNode} = start(protected, seccomp),
    Base = on(Prot, fun() -> erlang:memory(processes) end),
    Peak = peak(Prot, fun() -> erlang:memory(processes) end),
    C = seccomp_dist_raw:connect(ProtNode, seccomp_ct_deep@localhost, ?COOKIE),
    Depth = 2 bsl 20,
    Bottom = <<_:1/binary, Fun/binary>> = term_to_binary(fun erlang:node/0),
    Deep = fun(Last) -> <<131, (binary:copy(<<104, 1>>, Depth))/binary, Last/binary>> end,
    Ctl = term_to_binary({6, seccomp_dist_raw:pid(C, 3), '', rex}),
    [begin
         ok = seccomp_dist_raw:raw(C, <<112, Ctl/binary, (Deep(Last))/binary>>),
         timer:sleep(1500)
     end || Last <- [<<106>>, Fun]],
    Grown = Peak() - Base,
    ct:log("decoded ~p MB each (~p bytes of fun); peak growth of process memory: ~p MB",
           [Depth * 16 bsr 20, byte_size(Bottom), Grown bsr 20]),
    ?assert(Grown < 4 * Depth * 16),
    ?assertEqual(ProtNode, on(Prot, fun() -> node() end)),
    seccomp_dist_raw:close(C),
    stop([Prot]).

%% Messages from 0 B to 128 MiB arrive in both directions between a
%% carrier node and a plain node.
message_sizes_both_directions(_Config) ->
    {Prot, ProtNode} = start(protected, seccomp),
    {Cli, CliNode} = start(client, plain),
    Sizes = [0, 1, 64, 4096, 65536, 1 bsl 20, 16 bsl 20, 64 bsl 20, 128 bsl 20],
    %% each side has a sink the other side was shown
    Sink = fun() -> spawn(fun() -> sink() end) end,
    ProtSink = on(Prot, Sink),
    CliSink = on(Cli, Sink),
    ok = on(Cli, fun() -> register(seccomp_ct_sink_owner, CliSink), ok end),
    ok = on(Prot, fun() -> {seccomp_ct_sink_owner, CliNode} ! {sink, ProtSink}, ok end),
    timer:sleep(200),
    Send = fun(From, To, ToNode) ->
                   on(From, fun() ->
                                    true = net_kernel:connect_node(ToNode),
                                    [begin
                                         To ! {self(), size, S, binary:copy(<<7>>, S)},
                                         receive {got, S, Got} -> {S, Got} after 120000 -> {S, timeout} end
                                     end || S <- Sizes]
                            end, 600000)
           end,
    ToProt = Send(Cli, ProtSink, ProtNode),
    ToCli = Send(Prot, CliSink, CliNode),
    ct:log("to carrier: ~p~nto plain: ~p", [ToProt, ToCli]),
    ?assertEqual([{S, S} || S <- Sizes], ToProt),
    ?assertEqual([{S, S} || S <- Sizes], ToCli),
    stop([Cli, Prot]).

%% A packet larger than `max_message_bytes' is read and thrown away without
%% being held: its sender is told (a message, or a failed spawn reply), the
%% connection stays, and the next message arrives.
oversized_messages_are_refused_to_the_sender(_Config) ->
    Max = 1 bsl 20,
    {Prot, ProtNode} = start(protected, {seccomp, "#{default => #{max_message_bytes => 1048576,
                                                                 names => [net_kernel, global_name_server, global_group,
                                                                           pg, rex, seccomp_ct_sink]}}"}),
    {Cli, CliNode} = start(client, plain),
    ok = on(Cli, fun() -> register(seccomp_ct_client, spawn(fun ?MODULE:echo_loop/0)), ok end),
    Sink = on(Prot, fun() ->
                            P = spawn(fun() -> sink() end),
                            register(seccomp_ct_sink, P),
                            {seccomp_ct_client, CliNode} ! {shown, P},
                            P
                    end),
    timer:sleep(200),
    %% the protected node's memory, sampled while the large packets arrive
    Sampler = on(Prot, fun() ->
                               Base = erlang:memory(total),
                               spawn(fun() -> sample(fun() -> erlang:memory(total) - Base end, 0) end)
                       end),
    Big = 64 bsl 20,
    Result = on(Cli, fun() ->
                             ok = net_kernel:monitor_nodes(true),
                             M = erlang:monitor(process, Sink),
                             Told = fun() ->
                                            receive {seccomp_dist_refused, N, Why} -> {N, Why}
                                            after 20000 -> not_told
                                            end
                                    end,
                             Sink ! {self(), size, 2 bsl 20, binary:copy(<<7>>, 2 bsl 20)},
                             ToPid = Told(),
                             {seccomp_ct_sink, ProtNode} ! {self(), size, Big, binary:copy(<<7>>, Big)},
                             ToName = Told(),
                             Many = [begin Sink ! {self(), size, Big, binary:copy(<<7>>, Big)}, Told() end
                                     || _ <- lists:seq(1, 4)],
                             ReqId = erlang:spawn_request(ProtNode, erlang, length,
                                                          [binary_to_list(binary:copy(<<7>>, 2 bsl 20))], []),
                             Spawn = receive {spawn_reply, ReqId, Ok, R} -> {Ok, R} after 20000 -> no_reply end,
                             Sink ! {self(), size, 64, binary:copy(<<7>>, 64)},
                             Small = receive {got, S, G} -> {S, G} after 10000 -> not_delivered end,
                             Delivered = receive {got, _, _} -> delivered after 500 -> not_delivered end,
                             Down = receive {'DOWN', M, process, _, Why} -> Why after 0 -> no_down end,
                             NodeDown = receive {nodedown, _} -> nodedown after 0 -> no_nodedown end,
                             #{to_pid => ToPid, to_name => ToName, many => Many, spawn => Spawn,
                               small => Small, delivered => Delivered, down => Down, nodedown => NodeDown}
                     end, 300000),
    Stats = maps:get(CliNode, on(Prot, fun() -> seccomp_dist:stats() end)),
    ct:log("~p~n~p", [Result, Stats]),
    ?assertMatch(#{to_pid := {ProtNode, {too_large, _, Max}}, to_name := {ProtNode, {too_large, _, Max}},
                   spawn := {error, system_limit}, small := {64, 64}, delivered := not_delivered,
                   down := no_down, nodedown := no_nodedown}, Result),
    #{to_pid := {_, {too_large, Bytes, _}}, to_name := {_, {too_large, BigBytes, _}}} = Result,
    ?assert(Bytes > 2 bsl 20),
    ?assert(BigBytes > Big),
    ?assertEqual(4, length([B || {N, {too_large, B, M}} <- maps:get(many, Result),
                                 N =:= ProtNode, M =:= Max, B > Big])),
    Peak = on(Prot, fun() -> Sampler ! {peak, self()}, receive {peak, P} -> P end end),
    ct:log("peak growth of the protected node's memory: ~p bytes", [Peak]),
    ?assert(Peak < Big div 2),
    ?assertMatch(#{{too_large, refused} := 7}, Stats),
    ?assertNot(maps:is_key({malformed, refused}, Stats)),
    stop([Cli, Prot]).

%% The largest value `Measure()' takes until asked.
sample(Measure, Top) ->
    receive
        {peak, From} -> From ! {peak, Top}
    after 5 ->
        sample(Measure, max(Top, Measure()))
    end.

%% Start a sampler of `Measure' on `Node', and the fun that asks it.
peak(Node, Measure) ->
    Sampler = on(Node, fun() -> spawn(fun() -> sample(Measure, 0) end) end),
    fun() -> on(Node, fun() -> Sampler ! {peak, self()}, receive {peak, P} -> P after 5000 -> no_sample end end) end.

sink() ->
    receive
        {From, size, S, Bin} -> From ! {got, S, byte_size(Bin)}, sink();
        _ -> sink()
    end.

%% A policy file is read at boot (before the file server runs); a chain of
%% files that comes back to itself is refused.
policy_files_at_boot_and_cycles(Config) ->
    Dir = ?config(dir, Config),
    Good = filename:join(Dir, "good.policy"),
    ok = file:write_file(Good, "#{default => #{rpc => [{erlang, node, 0}, {os, getpid, 0}]}}.\n"),
    Chain = filename:join(Dir, "chain.policy"),
    ok = file:write_file(Chain, io_lib:format("{file, ~p}.~n", [Good])),
    {Prot, ProtNode} = start(protected, {seccomp, "{file, \"" ++ Chain ++ "\"}"}),
    {Cli, _} = start(client, plain),
    ?assert(is_list(on(Cli, fun() -> rpc:call(ProtNode, os, getpid, [], 2000) end))),
    A = filename:join(Dir, "a.policy"),
    B = filename:join(Dir, "b.policy"),
    ok = file:write_file(A, io_lib:format("{file, ~p}.~n", [B])),
    ok = file:write_file(B, io_lib:format("{file, ~p}.~n", [A])),
    Self = filename:join(Dir, "self.policy"),
    ok = file:write_file(Self, io_lib:format("{file, ~p}.~n", [Self])),
    ?assertMatch({error, {cyclic_dist_policy, _}}, seccomp_dist:set_policy({file, A})),
    ?assertMatch({error, {cyclic_dist_policy, _}}, seccomp_dist:set_policy({file, Self})),
    ?assertMatch({error, _}, seccomp_dist:set_policy({file, filename:join(Dir, "missing")})),
    stop([Cli, Prot]).

no_benchmark_switch(_Config) ->
    ?assertMatch({error, _}, seccomp_dist:set_policy(unfiltered_for_benchmarks)),
    ?assertMatch({error, _}, seccomp_dist:set_policy(unfiltered)).

%% PropEr: random, mutated and truncated packets never crash the filter, and
%% a spawn request it accepts always names an allowed call.
filter_never_crashes_and_never_lets_refused_through(_Config) ->
    Ctx = context(),
    N = list_to_integer(os:getenv("SECCOMP_DIST_PROPER_CASES", "100000")),
    Prop = proper:forall(packet(), fun(Packet) -> decision_ok(Packet, Ctx) end),
    T0 = erlang:monotonic_time(millisecond),
    ?assert(proper:quickcheck(Prop, [{numtests, N}, quiet])),
    ct:log("~p cases in ~p ms", [N, erlang:monotonic_time(millisecond) - T0]).

decision_ok(Packet, Ctx) ->
    case seccomp_dist_filter:decide(Packet, Ctx) of
        {{accept, spawn_request, _}, _} -> spawned_mfa(Packet) =:= {erlang, node, 0};
        {{accept, send, _}, _} -> false;
        {{accept, _, _}, _} -> true;
        {{refuse, _, _, _}, _} -> true;
        {{malformed, _}, _} -> true
    end.

spawned_mfa(<<112, Rest/binary>>) ->
    {Ctl, Used} = binary_to_term(Rest, [used]),
    Args = binary_to_term(binary:part(Rest, Used, byte_size(Rest) - Used)),
    case element(5, Ctl) of
        {erpc, execute_call, 4} -> [_, M, F, A] = Args, {M, F, length(A)};
        {M, F, _} -> {M, F, length(Args)}
    end.

packet() ->
    proper_types:oneof([proper_types:binary(), valid_packet(), mutated(valid_packet()),
                        truncated(valid_packet())]).

valid_packet() ->
    P = peer_pid(),
    Init = whereis(init),
    proper_types:bind(
      proper_types:oneof([
          {proper_types:exactly(29), make_ref(), P, P, mfa(), proper_types:exactly([])},
          {proper_types:exactly(6), P, proper_types:exactly(''), proper_types:oneof([rex, net_kernel, init, pg])},
          {proper_types:exactly(2), proper_types:exactly(''), proper_types:oneof([Init, self()])},
          {proper_types:exactly(37), proper_types:integer(0, 40), P, proper_types:oneof([Init, rex, make_ref()])},
          {proper_types:exactly(8), P, Init, proper_types:exactly(kill)}]),
      fun(Ctl) ->
              Payload = case element(1, Ctl) of
                            29 -> term_to_binary(hd([[make_ref(), os, cmd, ["x"]], []]));
                            _ -> term_to_binary({'$gen_call', {P, make_ref()}, {call, os, cmd, ["x"], P}})
                        end,
              <<112, (term_to_binary(Ctl))/binary, Payload/binary>>
      end, false).

mfa() ->
    proper_types:oneof([{proper_types:exactly(erpc), proper_types:exactly(execute_call), proper_types:exactly(4)},
                        {proper_types:exactly(erlang), proper_types:exactly(node), proper_types:integer(0, 1)},
                        {proper_types:exactly(os), proper_types:exactly(cmd), proper_types:exactly(1)}]).

mutated(Gen) ->
    proper_types:bind({Gen, proper_types:non_neg_integer(), proper_types:byte()},
                      fun({Bin, Pos, Byte}) when byte_size(Bin) > 0 ->
                              At = Pos rem byte_size(Bin),
                              <<Pre:At/binary, _, Post/binary>> = Bin,
                              <<Pre/binary, Byte, Post/binary>>;
                         ({Bin, _, _}) -> Bin
                      end, false).

truncated(Gen) ->
    proper_types:bind({Gen, proper_types:non_neg_integer()},
                      fun({Bin, Cut}) -> binary:part(Bin, 0, Cut rem (byte_size(Bin) + 1)) end, false).

%%% The long run ------------------------------------------------------------------------

%% Three nodes (two on the carrier, one plain), short net_ticktime, 60 s of
%% links, monitors, global, pg, numbered messages and periodic rpc: no
%% nodedown, no lost or reordered message.
cluster_stays_up(_Config) ->
    Seconds = list_to_integer(os:getenv("SECCOMP_DIST_SOAK_SECONDS", "62")),
    Tick = os:getenv("SECCOMP_DIST_SOAK_TICKTIME", "2"),
    Extra = ["-kernel", "net_ticktime", Tick],
    Nodes = [start(c1, seccomp, Extra), start(c2, seccomp, Extra), start(p3, plain, Extra)],
    Names = [N || {_, N} <- Nodes],
    [on(P, fun() -> [pong = net_adm:ping(N) || N <- Names], ok end) || {P, _} <- Nodes],
    [on(P, fun() -> {ok, _} = pg:start(pg), ok end) || {P, _} <- Nodes],
    %% every node: a watcher of nodedowns, a receiver in pg and global
    [ok = on(P, fun() -> soak_setup(N) end) || {P, N} <- Nodes],
    ?assert(wait(fun() -> lists:all(fun({P, _}) -> length(on(P, fun() -> pg:get_members(soak) end)) =:= 3 end, Nodes) end)),
    [ok = on(P, fun() -> soak_start(Names -- [N], Seconds) end) || {P, N} <- Nodes],
    timer:sleep(Seconds * 1000 + 3000),
    Reports = [{N, on(P, fun soak_report/0, 60000)} || {P, N} <- Nodes],
    ct:log("~p", [Reports]),
    [begin
         ?assertEqual(0, maps:get(nodedowns, R), N),
         ?assertEqual([], maps:get(errors, R), N),
         ?assert(maps:get(received, R) > 100, N),
         ?assertEqual(0, maps:get(out_of_order, R), N),
         ?assert(maps:get(rpcs, R) > 10, N),
         ?assertEqual(0, maps:get(rpc_errors, R), N),
         ?assertEqual(0, maps:get(link_exits, R), N)
     end || {N, R} <- Reports],
    %% every numbered message sent arrived
    Sent = lists:sum([maps:get(sent, R) || {_, R} <- Reports]),
    Received = lists:sum([maps:get(received, R) || {_, R} <- Reports]),
    ?assertEqual(Sent, Received),
    stop([P || {P, _} <- Nodes]).

soak_setup(Node) ->
    Stats = spawn(fun() -> soak_stats(#{nodedowns => 0, errors => [], received => 0, out_of_order => 0,
                                        sent => 0, rpcs => 0, rpc_errors => 0, link_exits => 0, last => #{}})
                  end),
    register(soak_stats, Stats),
    spawn(fun() -> ok = net_kernel:monitor_nodes(true), soak_watch() end),
    %% every error any part of the node logs is a failure of the run
    ok = logger:add_handler(soak_errors, ?MODULE, #{level => error}),
    Receiver = spawn(fun() -> process_flag(trap_exit, true), soak_receive() end),
    ok = pg:join(soak, Receiver),
    yes = global:register_name({soak, Node}, Receiver),
    ok.

%% logger handler callback
log(#{level := Level, msg := Msg}, _Config) ->
    soak_stats ! {error, {log, Level, Msg}}.

soak_watch() ->
    receive
        {nodedown, N} -> soak_stats ! {bump, nodedowns}, soak_stats ! {error, {nodedown, N}}, soak_watch();
        _ -> soak_watch()
    end.

soak_receive() ->
    receive
        {seq, From, N} -> soak_stats ! {seq, From, N}, soak_receive();
        {'EXIT', _, normal} -> soak_receive();
        {'EXIT', P, Why} -> soak_stats ! {bump, link_exits}, soak_stats ! {error, {exit, P, Why}}, soak_receive();
        _ -> soak_receive()
    end.

soak_stats(S) ->
    receive
        {bump, K} -> soak_stats(maps:update_with(K, fun(V) -> V + 1 end, S));
        {add, K, N} -> soak_stats(maps:update_with(K, fun(V) -> V + N end, S));
        {error, E} -> soak_stats(S#{errors := [E | maps:get(errors, S)]});
        {seq, From, N} ->
            Last = maps:get(last, S),
            Ooo = case maps:get(From, Last, 0) of
                      Prev when N =:= Prev + 1 -> 0;
                      _ -> 1
                  end,
            soak_stats(S#{received := maps:get(received, S) + 1, last := Last#{From => N},
                          out_of_order := maps:get(out_of_order, S) + Ooo});
        {report, From} -> From ! {report, maps:remove(last, S)}, soak_stats(S)
    end.

soak_report() ->
    soak_stats ! {report, self()},
    receive {report, R} -> R end.

%% Per peer: numbered messages to its pg member, linked and monitored; a
%% message to its global name; an rpc every half second.
soak_start(Peers, Seconds) ->
    Deadline = erlang:monotonic_time(millisecond) + Seconds * 1000,
    [spawn(fun() -> soak_sender(Peer, Deadline) end) || Peer <- Peers],
    ok.

soak_sender(Peer, Deadline) ->
    [Member] = [M || M <- pg:get_members(soak), node(M) =:= Peer],
    link(Member),
    process_flag(trap_exit, true),
    Mon = erlang:monitor(process, Member),
    Me = {node(), self()},
    soak_send(Peer, Member, Mon, Me, Deadline, 1, erlang:monotonic_time(millisecond)).

soak_send(Peer, Member, Mon, Me, Deadline, N, LastRpc) ->
    Now = erlang:monotonic_time(millisecond),
    receive
        {'DOWN', Mon, _, _, Why} -> soak_stats ! {error, {down, Peer, Why}}
    after 0 -> ok
    end,
    if
        Now >= Deadline ->
            soak_stats ! {add, sent, N - 1};
        true ->
            Member ! {seq, Me, N},
            LastRpc1 = case Now - LastRpc >= 500 of
                           true ->
                               case rpc:call(Peer, erlang, node, [], 5000) of
                                   Peer -> soak_stats ! {bump, rpcs};
                                   Bad -> soak_stats ! {bump, rpc_errors}, soak_stats ! {error, {rpc, Bad}}
                               end,
                               global:send({soak, Peer}, {global_hello, Me}),
                               Now;
                           false -> LastRpc
                       end,
            timer:sleep(5),
            soak_send(Peer, Member, Mon, Me, Deadline, N + 1, LastRpc1)
    end.

wait(F) -> wait(F, 100).
wait(F, 0) -> F();
wait(F, N) -> F() orelse (timer:sleep(50) =:= ok andalso wait(F, N - 1)).

%%% Attacks through the housekeeping protocols ------------------------------------------

%% Messages that make a local server send to a destination the message
%% names (global_group's answers from its own search processes, rex's
%% relays, gen_server replies to a local name) never reach a door.
relays_are_judged_as_sends(Config) ->
    {Prot, ProtNode} = start(protected, seccomp, ["-kernel", "start_pg", "true"]),
    {Att, _} = start(attacker, plain),
    File = filename:join(?config(dir, Config), "pwned"),
    Before = snapshot(Prot),
    Pg = on(Prot, fun() -> whereis(pg) end),
    Touch = "touch " ++ File,
    Cmd = {'$gen_cast', {cast, os, cmd, [Touch], user}},
    ok = on(Att, fun() ->
                         true = net_kernel:connect_node(ProtNode),
                         Me = self(),
                         SetEnv = {'$gen_call', {Me, t}, {set_env, kernel, pwned, true, []}},
                         GG = {global_group, ProtNode},
                         gen_server:cast(GG, {send_res, rex, x, Cmd, Me, {Me, t}}),
                         gen_server:cast(GG, {send_res, application_controller, x, SetEnv, Me, {Me, t}}),
                         gen_server:cast(GG, {send_res, net_kernel, x, {'$gen_call', {Me, t}, {disconnect, node()}}, Me, {Me, t}}),
                         gen_server:cast(GG, {find_name_res, {call, os, cmd, [Touch], Me}, Me, {rex, Me}}),
                         gen_server:cast(GG, {registered_names_res, {call, os, cmd, [Touch], Me}, Me, {rex, Me}}),
                         gen_server:cast(GG, {find_name_res, {stop, stop}, Me, {init, t}}),
                         {rex, ProtNode} ! {Me, {sbcast, global_group, {'$gen_cast', {send_res, rex, x, Cmd, Me, {Me, t}}}}},
                         {rex, ProtNode} ! {Me, {send, application_controller, SetEnv}},
                         {rex, ProtNode} ! {Me, {sbcast, rex, Cmd}},
                         %% rex's `send' wraps the message with its sender:
                         %% `{Me, {discover, Me}}' would make pg raise, five
                         %% times would stop the node
                         [begin {rex, ProtNode} ! {Me, {send, pg, {discover, Me}}}, timer:sleep(100) end
                          || _ <- lists:seq(1, 6)],
                         %% rex relaying to itself copies what is left at
                         %% every level: work in the square of the depth
                         Chain = lists:foldl(fun(_, M) -> {send, rex, M} end, features_request,
                                             lists:seq(1, 20000)),
                         {rex, ProtNode} ! {Me, Chain},
                         {rex, ProtNode} ! {Me, {sbcast, rex, {Me, Chain}}},
                         ok
                 end),
    timer:sleep(500),
    no_harm(Prot, ProtNode, File, Before),
    ?assertEqual(Pg, on(Prot, fun() -> whereis(pg) end)),
    ?assertEqual([{status, waiting}, {message_queue_len, 0}],
                 on(Prot, fun() -> process_info(whereis(rex), [status, message_queue_len]) end)),
    Stats = maps:values(on(Prot, fun() -> seccomp_dist:stats() end)),
    ct:log("~p", [Stats]),
    ?assertMatch([#{{send, refused} := N}] when N >= 17, Stats),
    stop([Att, Prot]).

%% With funs not allowed, no fun reaches the node in a spawn request's
%% arguments (erpc, rpc) or in an rpc message; an external fun the rpc
%% rules allow does.
spawn_arguments_carry_no_funs(Config) ->
    {Prot, ProtNode} = start(protected, {seccomp, "#{default => #{rpc => [{lists, map, 2}, {erlang, abs, 1}]}}"}),
    {Att, _} = start(attacker, plain),
    File = filename:join(?config(dir, Config), "pwned"),
    Touch = "touch " ++ File,
    Result = on(Att, fun() ->
                             Closure = fun(C) -> os:cmd(C) end,
                             {attempt(fun() -> erpc:call(ProtNode, lists, map, [Closure, [Touch]], 2000) end),
                              rpc:call(ProtNode, lists, map, [Closure, [Touch]], 2000),
                              attempt(fun() -> gen_server:call({rex, ProtNode}, {call, lists, map, [Closure, [Touch]], group_leader()}, 1000) end),
                              attempt(fun() -> erpc:call(ProtNode, lists, map, [fun os:cmd/1, [Touch]], 2000) end),
                              erpc:call(ProtNode, lists, map, [fun erlang:abs/1, [-1, 2]], 2000)}
                     end),
    ct:log("~p", [Result]),
    ?assertMatch({{error, {erpc, notsup}}, {badrpc, _}, {exit, {timeout, _}}, {error, {erpc, notsup}}, [1, 2]}, Result),
    timer:sleep(300),
    ?assertNot(filelib:is_file(File)),
    stop([Att, Prot]).

%% A peer's name data (register, exchange, new_nodes) never names a local
%% process this node did not register under that name: global would
%% otherwise resolve a clash by killing it. A peer unregisters only its own names.
global_names_never_point_at_local_processes(_Config) ->
    {Prot, ProtNode} = start(protected, seccomp),
    {Other, _} = start(bystander, plain),
    {Att, AttNode} = start(attacker, plain),
    Legit = on(Other, fun() ->
                              pong = net_adm:ping(ProtNode),
                              P = spawn(fun() -> receive stop -> ok end end),
                              yes = global:register_name(seccomp_ct_legit, P),
                              P
                      end),
    ?assert(wait(fun() -> on(Prot, fun() -> global:whereis_name(seccomp_ct_legit) end) =:= Legit end)),
    Victims = on(Prot, fun() -> [whereis(code_server), whereis(kernel_sup)] end),
    [Victim | _] = Victims,
    Resolve = fun global:random_exit_name/3,
    Results = on(Att, fun() ->
                              true = net_kernel:connect_node(ProtNode),
                              GNS = {global_name_server, ProtNode},
                              R1 = attempt(fun() -> gen_server:call(GNS, {register, seccomp_ct_foo, Victim, Resolve}, 1000) end),
                              R2 = attempt(fun() -> gen_server:call(GNS, {unregister, seccomp_ct_legit}, 1000) end),
                              gen_server:cast(GNS, {new_nodes, AttNode, [{insert, {seccomp_ct_bar, Victim, Resolve}}], [], [], []}),
                              {R1, R2}
                      end),
    ct:log("~p", [Results]),
    ?assertMatch({{exit, {timeout, _}}, {exit, {timeout, _}}}, Results),
    %% a node whose own global table names a local process of the protected node connects
    {Z, _} = start(zattacker, plain),
    on(Z, fun() ->
                  sys:replace_state(global_name_server,
                                    fun(S) -> ets:insert(global_names, {seccomp_ct_baz, Victim, Resolve, make_ref()}), S end),
                  pong = net_adm:ping(ProtNode),
                  ok
          end),
    timer:sleep(1500),
    ?assertEqual({Victims, undefined, undefined, undefined, Legit},
                 on(Prot, fun() -> {[whereis(code_server), whereis(kernel_sup)],
                                    global:whereis_name(seccomp_ct_foo), global:whereis_name(seccomp_ct_bar),
                                    global:whereis_name(seccomp_ct_baz), global:whereis_name(seccomp_ct_legit)}
                          end)),
    stop([Z, Att, Other, Prot]).

%% One message of an accepted kind with a field of the wrong type would
%% crash a kernel server, and kernel_sup (no restarts) would stop the node;
%% OTP 29's pg messages crash OTP 25's pg the same way.
one_message_stops_nothing(_Config) ->
    {Prot, ProtNode} = start(protected, seccomp, ["-kernel", "start_pg", "true"]),
    {Att, _} = start(attacker, plain),
    Servers = fun() -> on(Prot, fun() -> [{N, whereis(N)} || N <- [kernel_sup, kernel_safe_sup, global_name_server,
                                                                     global_group, pg, rex, net_kernel]] end) end,
    Before = Servers(),
    Mem0 = on(Prot, fun() -> erlang:memory(total) end),
    AskPeak = peak(Prot, fun() -> erlang:memory(total) end),
    ok = on(Att, fun() ->
                         true = net_kernel:connect_node(ProtNode),
                         Me = self(),
                         GNS = {global_name_server, ProtNode},
                         GG = {global_group, ProtNode},
                         Resolve = fun global:random_exit_name/3,
                         gen_server:cast(GG, {send_res, Me, x, hi, not_a_pid, {Me, t}}),
                         [attempt(fun() -> gen_server:call(GNS, Req, 300) end)
                          || Req <- [{register, seccomp_ct_x, not_a_pid, Resolve}, {set_lock, bad}, {del_lock, bad},
                                     {register, seccomp_ct_y, Me, not_a_fun}, {unregister, {x}}]],
                         [gen_server:cast(GNS, Req)
                          || Req <- [{init_connect, {8, 1}, node(), garbage}, {init_connect, x, node(), garbage},
                                     %% protocol versions global's locker asserts against
                                     {init_connect, {1, make_ref()}, node(), {locker, x, #{}, Me}},
                                     {init_connect, {4, make_ref()}, node(), {locker, x, [], Me}},
                                     {init_connect, {4.5, make_ref()}, node(), {locker, x, [], Me}},
                                     {exchange, node(), not_a_list, [], 1}, {exchange, node(), [x | y], [], 1},
                                     {new_nodes, node(), [x | y], [], [], []}, {async_del_name, x}, {in_sync, node(), x},
                                     {lock_set, Me, x, [], 1}]],
                         [gen_server:cast(GG, Req)
                          || Req <- [{conf_check, x, node(), Me, sync, x, x}, {find_name}, {registered_names, x}]],
                         [begin {pg, ProtNode} ! {discover, Me, 1}, timer:sleep(20) end || _ <- lists:seq(1, 6)],
                         [{pg, ProtNode} ! Msg || Msg <- [{join, Me, g, [Me | x]}, {leave, Me, Me, x},
                                                          {'$gen_cast', {sync, Me, [{g, [Me | x]}]}},
                                                          {'$gen_cast', {sync, Me, x}}, {update, Me, []}]],
                         %% an improper argument list once made the filter raise and the
                         %% runtime log the whole term
                         Big = binary:copy(<<1, 2, 3, 4, 5, 6, 7>>, 300000),
                         {rex, ProtNode} ! {'$gen_call', {Me, make_ref()}, {call, erlang, node, [Big | x], Me}},
                         _ = spawn_opt(ProtNode, erlang, node, [], [monitor]),
                         ok
                 end),
    timer:sleep(1500),
    Peak = AskPeak(),
    ct:log("memory before ~p, peak ~p", [Mem0, Peak]),
    ?assertEqual(Before, Servers()),
    ?assert(is_integer(Peak) andalso Peak >= Mem0 andalso Peak - Mem0 < 64 bsl 20),
    {Fresh, _} = start(fresh, plain),
    ?assertEqual(ProtNode, on(Fresh, fun() -> rpc:call(ProtNode, erlang, node, [], 2000) end)),
    stop([Fresh, Att, Prot]).

%% Atoms are never freed: the budget is per node name, whatever the
%% connection, and all peers together fill at most an eighth of the atom
%% table. Payloads of refused messages are charged; control messages the
%% filter does not know are refused before they are decoded.
atom_budget_outlives_connections(_Config) ->
    {Prot, ProtNode} = start(protected, {seccomp, "#{default => #{max_new_atoms => 3000, rpc => [{erlang, node, 0}]}}"},
                             ["+t", "80000"]),
    Count = fun() -> on(Prot, fun() -> erlang:system_info(atom_count) end) end,
    Limit = on(Prot, fun() -> erlang:system_info(atom_limit) end),
    [_, Host] = string:split(atom_to_list(ProtNode), "@"),
    Name = fun(I) -> list_to_atom("seccomp_ct_raw" ++ integer_to_list(I) ++ "@" ++ Host) end,
    Flood = fun(I, Messages) ->
                    C = seccomp_dist_raw:connect(ProtNode, Name(I), ?COOKIE),
                    Me = seccomp_dist_raw:pid(C, 7),
                    <<131, MeBin/binary>> = term_to_binary(Me),
                    <<131, CtlBin/binary>> = term_to_binary({6, Me, '', rex}),
                    [begin
                         %% {Me, [NewAtom...]}: a shape rex refuses
                         <<131, 108, N:32, Atoms/binary>> = new_atoms_term(<<"ct_a">>, 1000),
                         ok = seccomp_dist_raw:raw(C, <<112, 131, CtlBin/binary, 131, 104, 2, MeBin/binary, 108, N:32, Atoms/binary>>),
                         %% an unknown control message made of new atoms
                         <<131, 108, M:32, Atoms2/binary>> = new_atoms_term(<<"ct_c">>, 1000),
                         ok = seccomp_dist_raw:raw(C, <<112, 131, 105, (M + 1):32, 97, 99, Atoms2/binary>>)
                     end || _ <- lists:seq(1, Messages)],
                    timer:sleep(300),
                    seccomp_dist_raw:close(C),
                    timer:sleep(100)
            end,
    %% the first connection loads code (and its atoms)
    Flood(0, 1),
    A0 = Count(),
    %% one name, three connections: 6,000 atoms tried, 3,000 allowed
    [Flood(1, 2) || _ <- lists:seq(1, 3)],
    A1 = Count(),
    %% new names: the cap of all peers (an eighth of the table)
    [Flood(I, 3) || I <- lists:seq(2, 6)],
    A2 = Count(),
    ct:log("limit ~p, atoms ~p -> ~p -> ~p", [Limit, A0, A1, A2]),
    ?assert(A1 - A0 =< 3000 + 10),
    ?assert(A1 - A0 >= 2000),
    ?assert(A2 - A0 =< Limit div 8 + 10),
    ?assertEqual(pong, on(Prot, fun() -> pong end)),
    stop([Prot]).

%% A peer cannot make the node drop another: not by naming it in global's
%% lost_connection, not by connecting under its name.
innocent_nodes_stay_connected(_Config) ->
    {Prot, ProtNode} = start(protected, seccomp),
    {Inno, InnoNode} = start(innocent, plain),
    {Att, _} = start(attacker, plain),
    ok = on(Inno, fun() ->
                          pong = net_adm:ping(ProtNode),
                          Self = self(),
                          register(seccomp_ct_watch,
                                   spawn(fun() -> true = monitor_node(ProtNode, true),
                                                  Self ! watching,
                                                  receive {nodedown, N} -> exit({nodedown, N}) end end)),
                          receive watching -> ok end
                  end),
    ok = on(Att, fun() ->
                         pong = net_adm:ping(ProtNode),
                         {global_name_server, ProtNode} ! {lost_connection, node(), 0, 1, InnoNode},
                         ok
                 end),
    Spoof = seccomp_dist_raw:connect(ProtNode, InnoNode, ?COOKIE),
    ct:log("spoofed handshake: ~p", [Spoof]),
    ?assertMatch({closed, _}, Spoof),
    timer:sleep(2000),
    ?assert(on(Prot, fun() -> lists:member(InnoNode, nodes()) end)),
    ?assert(on(Inno, fun() -> is_pid(whereis(seccomp_ct_watch)) end)),
    stop([Att, Inno, Prot]).

%% Hand-built fields a real node would not send: every pid, alias and list
%% is checked before a server sees it, and no shape makes the filter raise.
peer_fields_are_typed_and_owned(_Config) ->
    %% judged where the servers run (with pg)
    {Prot, _} = start(protected, seccomp, ["-kernel", "start_pg", "true"]),
    ok = on(Prot, fun ?MODULE:typed_and_owned/0),
    stop([Prot]).

typed_and_owned() ->
    Ctx = context(),
    P = peer_pid(),
    Local = alias(),
    Ref = make_ref(),
    Named = fun(Name, Msg) -> verdict(packet({6, P, '', Name}, Msg), Ctx) end,
    %% a gen_server reply to an alias of this node, a local group leader
    ?assertMatch({refuse, send, _, _}, Named(net_kernel, {'$gen_call', {P, [alias | Local]}, {is_auth, x@y}})),
    ?assertMatch({accept, send, _}, Named(net_kernel, {'$gen_call', {P, [alias | remote_ref()]}, {is_auth, x@y}})),
    ?assertMatch({refuse, send, _, _}, Named(rex, {P, {call, erlang, node, [], whereis(user)}})),
    ?assertMatch({refuse, send, _, _}, Named(rex, {'$gen_call', {P, Ref}, {call, erlang, node, [a | b], P}})),
    %% any process the policy names: a call's reply goes to the peer
    register(seccomp_ct_named, spawn(fun() -> receive stop -> ok end end)),
    NamedCtx = context(#{names => [seccomp_ct_named]}),
    ToNamed = fun(Msg) -> verdict(packet({6, P, '', seccomp_ct_named}, Msg), NamedCtx) end,
    ?assertMatch({refuse, send, _, _}, ToNamed({'$gen_call', {whereis(init), t}, hi})),
    ?assertMatch({accept, send, _}, ToNamed({'$gen_call', {P, t}, hi})),
    %% a local group leader for a spawned process; improper options and arguments
    Spawn = fun(GL, MFA, Opts, Args) -> verdict(packet({29, Ref, P, GL, MFA, Opts}, Args), Ctx) end,
    ?assertMatch({refuse, spawn_request, local_group_leader, _}, Spawn(whereis(user), {erlang, node, 0}, [], [])),
    ?assertMatch({refuse, spawn_request, _, _}, Spawn(P, {erlang, node, 0}, [link | x], [])),
    ?assertMatch({refuse, spawn_request, _, _}, Spawn(P, {erlang, node, 0}, [{monitor, [a | b]}], [])),
    ?assertMatch({refuse, spawn_request, _, _}, Spawn(P, {erpc, execute_call, 4}, [], [Ref, erlang, node, [a | b]])),
    ?assertMatch({accept, spawn_request, _}, Spawn(P, {erlang, node, 0}, [monitor], [])),
    %% global: a clash resolver of another release (a local fun that does not
    %% resolve here) is accepted, and checked with no exception
    Foreign = unresolvable_fun(global, 3),
    ?assertMatch({accept, send, _}, Named(global_name_server, {'$gen_call', {P, Ref}, {register, ct_n, P, Foreign}})),
    ?assertMatch({refuse, send, _, _}, Named(global_name_server, {'$gen_call', {P, Ref}, {register, ct_n, P, unresolvable_fun(os, 3)}})),
    ?assertMatch({refuse, send, _, _}, Named(global_name_server, {lost_connection, peer@host, 0, 1, other@host})),
    ?assertMatch({refuse, send, _, _}, Named(global_name_server, {'$gen_cast', {exchange_ops, peer@host, 1, [], []}})),
    ?assertMatch({accept, send, _}, Named(global_name_server, {'$gen_cast', {in_sync, peer@host, true}})),
    %% pg's OTP 29 forms only where pg handles them; OTP 25's everywhere
    case list_to_integer(erlang:system_info(otp_release)) >= 29 of
        true -> ?assertMatch({accept, send, _}, Named(pg, {discover, P, 1}));
        false -> ?assertMatch({refuse, send, _, _}, Named(pg, {discover, P, 1}))
    end,
    ?assertMatch({accept, send, _}, Named(pg, {discover, P})),
    %% an exception while deciding makes the packet malformed, with a
    %% bounded reason, never the receiver crash
    {{malformed, Why}, 0} = seccomp_dist_filter:decide(packet({6, P, '', rex}, binary:copy(<<7>>, 1 bsl 20)),
                                                      Ctx#{rules := broken}),
    ?assertMatch({filter_error, error, {_, _, _}}, Why),
    %% control messages no release sends are refused before decoding
    ?assertMatch({refuse, unknown_control, 99, none},
                 verdict(<<112, 131, 104, 2, 97, 99, (new_atoms_term(<<"ctl">>, 10))/binary>>, Ctx)),
    ok.

remote_ref() ->
    Name = <<"peer@host">>,
    binary_to_term(<<131, 90, 3:16, 119, (byte_size(Name)), Name/binary, 7:32, 1:32, 2:32, 3:32>>).

%% A local fun of `Module' that names no code of this node's release.
unresolvable_fun(Module, Arity) ->
    <<131, Pid/binary>> = term_to_binary(self()),
    M = atom_to_binary(Module),
    Body = <<Arity, (crypto:strong_rand_bytes(16))/binary, 999:32, 0:32, 119, (byte_size(M)), M/binary,
             97, 0, 97, 0, Pid/binary>>,
    binary_to_term(<<131, 112, (byte_size(Body) + 4):32, Body/binary>>).

%% The runtime trusts the fields of a control message the filter does not
%% judge (a trace token that is not a token crashes the emulator): every
%% field of every control message is typed, a wrong type is malformed, and
%% a control term is bounded in memory like a payload.
control_fields_are_typed(_Config) ->
    Ctx = context(#{max_message_bytes => 1 bsl 20}),
    P = peer_pid(),
    Given = spawn(fun() -> receive stop -> ok end end),
    Alias = alias(),
    ok = ?MODULE:give(Ctx, [Given, Alias]),
    R = make_ref(),
    T = {2, label, 7, P, 6},
    Mfa = {erlang, node, 0},
    %% one well-formed sample of every operation; the position of each
    %% field that may be any term (a reason) or that the filter judges (a
    %% spawn request's call and options: refused with a spawn reply)
    Samples = [{{1, P, Given}, []}, {{2, '', Given}, []}, {{3, P, Given, normal}, [4]}, {{4, P, Given}, []},
               {{5}, []}, {{6, P, '', rex}, []}, {{7, P, Given}, []}, {{8, P, Given, normal}, [4]},
               {{12, '', Given, T}, []}, {{13, P, Given, T, normal}, [5]}, {{16, P, '', rex, T}, []},
               {{18, P, Given, T, normal}, [5]}, {{19, P, Given, R}, []}, {{20, P, Given, R}, []},
               {{21, P, Given, R, normal}, [5]}, {{22, P, Given}, []}, {{23, P, Given, T}, []},
               {{24, P, Given}, []}, {{25, P, Given, T}, []}, {{26, P, Given}, []}, {{27, P, Given, T}, []},
               {{28, P, Given, R}, []}, {{29, R, P, P, Mfa, [monitor]}, [5, 6]},
               {{30, R, P, P, Mfa, [monitor], T}, [5, 6]}, {{31, R, Given, 0, P}, []},
               {{32, R, Given, 0, P, T}, []}, {{33, P, Alias}, []}, {{34, P, Alias, T}, []},
               {{35, 1, P, Given}, []}, {{36, 1, P, Given}, []}, {{37, 0, P, Given}, []},
               {{37, 0, P, Given, T}, []}],
    Known = [Op || Op <- lists:seq(1, 37), not lists:member(Op, [9, 10, 11, 14, 15, 17])],
    ?assertEqual(Known, lists:usort([element(1, C) || {C, _} <- Samples])),
    Wrong = fun(V) when is_integer(V) -> foo; (_) -> 42 end,
    [begin
         ?assertEqual(true, seccomp_dist_control:well_formed(C), C),
         [begin
              Bad = setelement(I, C, Wrong(element(I, C))),
              ?assertMatch({malformed, _}, verdict(packet(Bad, {x}), Ctx), Bad)
          end || I <- lists:seq(2, tuple_size(C)), not lists:member(I, Any)]
     end || {C, Any} <- Samples],
    %% tokens of every wrong shape, in every operation that carries one
    %% (a label the receiving server would carry on everything it sends:
    %% a small one)
    BadTokens = [foo, [], {}, {2, l, 7, P}, {x, l, 7, P, 6}, {2, l, -1, P, 6}, {2, l, 7, self_pid, 6},
                 {2, l, 7, P, 1 bsl 64}, {2, lists:seq(1, 200), 7, P, 6}],
    ?assert(seccomp_dist_control:well_formed({16, P, '', rex, {2, {label, lists:seq(1, 100)}, 7, P, 6}})),
    [?assertMatch({malformed, _}, verdict(packet(setelement(tuple_size(C), C, Tok), {x}), Ctx), {C, Tok})
     || {C, _} <- Samples, element(tuple_size(C), C) =:= T, Tok <- BadTokens],
    %% a control term beyond the memory bound is refused before it is decoded
    Nils = <<131, 108, (2 bsl 20):32, (binary:copy(<<106>>, 2 bsl 20))/binary, 106>>,
    Body = fun(Term) -> <<131, B/binary>> = term_to_binary(Term), B end,
    Huge = <<112, 131, 104, 4, 97, 6, (Body(P))/binary, (binary:part(Nils, 1, byte_size(Nils) - 1))/binary,
             (Body(rex))/binary, (term_to_binary({P, features_request}))/binary>>,
    ?assertMatch({malformed, {control_too_large, _}}, verdict(Huge, Ctx)),
    Given ! stop,
    %% the packet that crashed the emulator: the node stays up, the sender is cut off
    {Prot, ProtNode} = start(protected, seccomp),
    C0 = seccomp_dist_raw:connect(ProtNode, seccomp_ct_tokens@localhost, ?COOKIE),
    Me = seccomp_dist_raw:pid(C0, 7),
    ok = seccomp_dist_raw:send(C0, {16, Me, '', rex, foo}, {Me, features_request}),
    ?assertMatch({closed, _}, closed(C0)),
    ?assertEqual(ProtNode, on(Prot, fun() -> node() end)),
    stop([Prot]).

%% A connecting node's name becomes an atom before it shows it holds the
%% cookie: new names are budgeted, so strangers without the cookie cannot
%% fill the atom table; the node stays up and known names still connect.
handshake_names_are_budgeted(_Config) ->
    %% a smaller atom table, so the budget is spent in a few thousand connects
    {Prot, ProtNode} = start(protected, seccomp, ["+t", "200000"]),
    {Known, KnownNode} = start(known, plain),
    true = on(Known, fun() -> net_kernel:connect_node(ProtNode) end),
    ok = on(Known, fun() -> erlang:disconnect_node(ProtNode), ok end),
    %% the budget of names is 1/64 of the atom table
    Budget = on(Prot, fun() -> erlang:system_info(atom_limit) div 64 end),
    %% every other name with bytes after it (the handshake ignores them),
    %% some with a byte that is not ASCII (the handshake makes each byte a
    %% character)
    Names = ["stranger" ++ [16#E9 || I rem 3 =:= 0] ++ integer_to_list(I) ++ "@localhost"
             || I <- lists:seq(1, Budget + 300)],
    Results = [seccomp_dist_raw:connect(ProtNode, list_to_atom(Name), "wrong cookie",
                                        #{residue => binary:copy(<<0>>, I rem 2)})
               || {I, Name} <- lists:enumerate(Names)],
    Made = on(Prot, fun() -> length([N || N <- Names, seccomp_dist_SUITE:atom_exists(N)]) end, 120000),
    ct:log("~p connects, ~p names became atoms (budget ~p)", [length(Names), Made, Budget]),
    ?assert(Made =< Budget),
    ?assert(Made > 0),
    ?assertEqual([], [R || R <- Results, is_map(R)]),
    ?assertEqual(ProtNode, on(Prot, fun() -> node() end)),
    ?assertEqual(KnownNode, on(Known, fun() -> rpc:call(ProtNode, erlang, node, [], 5000) =:= ProtNode andalso node() end)),
    stop([Known, Prot]).

atom_exists(Name) ->
    try list_to_existing_atom(Name) of _ -> true
    catch error:badarg -> false
    end.

%% What ends a raw connection (packets the node sends first are skipped).
closed(C) ->
    case seccomp_dist_raw:recv(C, 5000) of
        {closed, _} = Closed -> Closed;
        timeout -> timeout;
        _Packet -> closed(C)
    end.

%% `global' and `pg' show a peer the pids of every process registered or
%% joined there: those are reachable, but not through the messages that act
%% on a process itself (system messages, a supervisor's children) or make
%% it answer a process the peer picked. The same holds for every process
%% the peer was shown and for aliases.
doors_of_shown_processes_are_refused(Config) ->
    Dir = ?config(dir, Config),
    Log = filename:join(Dir, "sys.log"),
    Touched = filename:join(Dir, "started_child"),
    {Prot, ProtNode} = start(protected, seccomp),
    {Svc, Sup} = on(Prot, fun() ->
                                  {ok, S} = gen_server:start({global, seccomp_ct_svc}, ?MODULE, server, []),
                                  {ok, U} = supervisor:start_link({global, seccomp_ct_sup}, ?MODULE, sup),
                                  true = unlink(U),
                                  {S, U}
                          end),
    {Att, _} = start(attacker, plain),
    Seen = on(Att, fun() ->
                           true = net_kernel:connect_node(ProtNode),
                           ok = global:sync(),
                           S = global:whereis_name(seccomp_ct_svc),
                           U = global:whereis_name(seccomp_ct_sup),
                           Init = craft_pid(ProtNode, creation(S), 0),
                           Tries = [attempt(fun() -> sys:get_state(S, 1000) end),
                                    attempt(fun() -> sys:suspend(S, 1000) end),
                                    attempt(fun() -> sys:log_to_file(S, Log, 1000) end),
                                    attempt(fun() -> sys:terminate(S, pwned, 1000) end),
                                    attempt(fun() -> gen_server:call(U, {start_child, #{id => x, start => {os, cmd, ["touch " ++ Touched]}}}, 1000) end),
                                    attempt(fun() -> gen_server:call(U, {terminate_child, x}, 1000) end)],
                           S ! {'$gen_call', {Init, stop}, relay},
                           %% a server started without a link is its own parent
                           S ! {'EXIT', S, shutdown},
                           [U ! {'EXIT', craft_pid(ProtNode, creation(S), N), shutdown} || N <- lists:seq(0, 300)],
                           timer:sleep(500),
                           {S, U, Tries, gen_server:call(S, ping, 5000)}
                   end),
    ct:log("~p", [Seen]),
    ?assertMatch({Svc, Sup, _, pong}, Seen),
    [?assertMatch({exit, {timeout, _}}, T) || T <- element(3, Seen)],
    ?assertNot(filelib:is_file(Log)),
    ?assertNot(filelib:is_file(Touched)),
    ?assertEqual({pong, running, 0}, on(Prot, fun() ->
                                                    {status, _, _, [_, St | _]} = sys:get_status(Svc),
                                                    {gen_server:call(Svc, ping), St, sys:get_state(Svc)}
                                            end)),
    ?assertEqual(ProtNode, on(Prot, fun() -> node() end)),
    ?assert(on(Prot, fun() -> is_process_alive(Sup) end)),
    stop([Att, Prot]).

%% A remote call shows the peer the caller's group leader, an io server: no
%% io request reaches it (one that makes an io server apply a function,
%% `put_chars' or `get_until' with M, F, A, alone or among `requests', would
%% run it here); the peer's process is answered `{error, enotsup}'. Nor
%% does a file request (a file's io server closes the file on one).
io_servers_shown_to_peers_apply_nothing(Config) ->
    Dir = ?config(dir, Config),
    Touched = filename:join(Dir, "io_mfa"),
    Out = filename:join(Dir, "io_out"),
    {Prot, _ProtNode} = start(protected, seccomp),
    {Att, AttNode} = start(attacker, plain),
    Touch = [Touched, <<"x">>],
    Requests = [{put_chars, unicode, file, write_file, Touch},
                {put_chars, file, write_file, Touch},
                {get_until, unicode, "", file, write_file, Touch},
                {get_until, "", file, write_file, Touch},
                {requests, [{put_chars, unicode, <<"a">>}, {put_chars, unicode, file, write_file, Touch}]},
                {put_chars, unicode, <<"plain">>}],
    Replies = on(Prot, fun() ->
                               {ok, Dev} = file:open(Out, [write]),
                               group_leader(Dev, self()),
                               erpc:call(AttNode, fun() ->
                                                          group_leader() ! {file_request, self(), make_ref(), close},
                                                          [io_request(R) || R <- Requests]
                                                  end, 20000)
                               ++ [is_process_alive(Dev)]
                       end),
    ct:log("~p", [Replies]),
    ?assertEqual(lists:duplicate(length(Requests), {error, enotsup}) ++ [true], Replies),
    ?assertNot(filelib:is_file(Touched)),
    ?assertEqual({ok, <<>>}, file:read_file(Out)),
    stop([Att, Prot]).

%% The `pg' of OTP 25-28 trusts its peers' leaves and syncs: a leave of a
%% group the peer's scope never joined, of the same group twice, or of pids
%% another scope joined (then a sync) makes it raise, and five raises stop
%% the node. None reaches it; the leaves a scope's own joins allow do.
pg_leaves_fit_what_the_peer_joined(_Config) ->
    {Prot, ProtNode} = start(protected, seccomp, ["-kernel", "start_pg", "true"]),
    {Worker, Pg} = on(Prot, fun() ->
                                    W = spawn(fun() -> receive stop -> ok end end),
                                    ok = pg:join(workers, W),
                                    {W, whereis(pg)}
                            end),
    {Att, _} = start(attacker, plain),
    Members = fun(G) -> on(Prot, fun() -> lists:sort(pg:get_members(G)) end) end,
    Scope = fun() -> spawn(fun() -> receive stop -> ok end end) end,
    Send = fun(Msgs) -> on(Att, fun() -> [{pg, ProtNode} ! M || M <- Msgs], timer:sleep(300), ok end) end,
    {A, B, X, Y, Z} = on(Att, fun() ->
                                      true = net_kernel:connect_node(ProtNode),
                                      {Scope(), Scope(), Scope(), Scope(), Scope()}
                              end),
    ok = Send([{discover, A}, {discover, B}]),
    ok = Send([{leave, A, [A], [nosuchgroup]} || _ <- lists:seq(1, 6)]),
    %% OTP 29's pg takes every leave (it looks groups up with a default):
    %% the view is kept, and these refused, only before it; on every
    %% release, pg and the local memberships survive.
    Trusting = on(Prot, fun() -> list_to_integer(erlang:system_info(otp_release)) < 29 end),
    Check = fun(Expected, Group) -> Trusting andalso ?assertEqual(Expected, Members(Group)) end,
    ok = Send([{join, A, g2, [A]}, {leave, A, [A], [g2, g2]}]),
    Check([A], g2),
    ok = Send([{join, B, g3, [X]}, {join, A, g3, [Y]}, {leave, B, [X, Y], [g3]}]),
    Check(lists:sort([X, Y]), g3),
    ok = Send([{'$gen_cast', {sync, A, [{g3, [Z]}, {g3, [Z]}]}}, {'$gen_cast', {sync, A, [{g3, [Z]}]}}]),
    Check(lists:sort([X, Z]), g3),
    %% what a scope joined, it leaves
    ok = Send([{leave, A, [A], [g2]}, {leave, B, [X], [g3]}]),
    Check([], g2),
    Check([Z], g3),
    %% A group a scope holds with no pids (an empty join, or a sync that
    %% lists one): the last pid's leave from another scope drops pg's row
    %% of the group, and the empty scope's next sync would raise; six rounds
    %% would stop the node.
    [begin
         {S1, S2, Q} = on(Att, fun() -> {Scope(), Scope(), Scope()} end),
         G = {emptied, I},
         ok = Send([{discover, S1}, {discover, S2}, {join, S1, G, [S1]}, {join, S2, G, []},
                    {'$gen_cast', {sync, S2, [{G, []}]}}, {leave, S1, S1, [G]},
                    {'$gen_cast', {sync, S2, [{G, [Q]}]}}]),
         Check([Q], G)
     end || I <- lists:seq(1, 6)],
    %% A monitor exit with a reference pg never made is dropped by the
    %% runtime (pg still knows the scope): a leave that does not fit what
    %% the scope joined stays refused.
    C = seccomp_dist_raw:connect(ProtNode, seccomp_ct_pgraw@localhost, ?COOKIE),
    P = seccomp_dist_raw:pid(C, 9),
    [begin
         ok = seccomp_dist_raw:send(C, {6, P, '', pg}, {discover, P}),
         ok = seccomp_dist_raw:send(C, {21, P, Pg, make_ref(), noproc}),
         ok = seccomp_dist_raw:send(C, {6, P, '', pg}, {leave, P, P, [no_such_group]})
     end || _ <- lists:seq(1, 6)],
    %% A monitor exit names the process its monitor watches: pg takes the
    %% process it names for the scope that went (another of the peer's
    %% scopes raised, a name or a third node's pid kept the scope forever).
    [begin
         S1 = seccomp_dist_raw:pid(C, 20 + 2 * I),
         S2 = seccomp_dist_raw:pid(C, 21 + 2 * I),
         ok = seccomp_dist_raw:send(C, {6, S1, '', pg}, {discover, S1}),
         ok = seccomp_dist_raw:send(C, {6, S2, '', pg}, {discover, S2}),
         [R1] = [R || {{19, _, W, R}, _} <- seccomp_dist_raw:flush(C), W =:= S1],
         [ok = seccomp_dist_raw:send(C, {21, Named, Pg, R1, noproc}) || Named <- [S2, pg, self()]]
     end || I <- lists:seq(1, 6)],
    timer:sleep(500),
    seccomp_dist_raw:close(C),
    ?assertEqual({Pg, [Worker]}, on(Prot, fun() -> {whereis(pg), pg:get_members(workers)} end)),
    ?assertEqual(ProtNode, on(Prot, fun() -> node() end)),
    stop([Att, Prot]).

%% A peer may take `global''s own lock here (`global:trans_all_known/1' on
%% the peer does); while it is held, the name server inserts the names of a
%% peer's `new_nodes' only after matching the lock the message names, and
%% one that names none (or another) would crash it, and kernel_sup would
%% stop the node. Those are refused; the lock itself works.
global_syncs_name_their_lock(_Config) ->
    {Prot, ProtNode} = start(protected, seccomp),
    Server = on(Prot, fun() -> whereis(global_name_server) end),
    {Att, _} = start(attacker, plain),
    ok = on(Att, fun() ->
                         true = net_kernel:connect_node(ProtNode),
                         GNS = {global_name_server, ProtNode},
                         Me = self(),
                         Resolve = fun global:random_exit_name/3,
                         true = gen_server:call(GNS, {set_lock, {global, Me}}),
                         [begin
                              gen_server:cast(GNS, {new_nodes, node(), [{insert, {Name, Me, Resolve}}], [], [], Extra}),
                              timer:sleep(100)
                          end || {Name, Extra} <- [{seccomp_ct_sync1, []}, {seccomp_ct_sync2, [{vsn, 8}, {lock, undefined}]},
                                                   {seccomp_ct_sync3, [{vsn, 8}, {lock, {other, Me}}]},
                                                   {seccomp_ct_sync4, [{vsn, 8} | {lock, {global, [Me]}}]}]],
                         true = gen_server:call(GNS, {del_lock, {global, Me}}),
                         ok
                 end),
    timer:sleep(300),
    ?assertEqual(Server, on(Prot, fun() -> whereis(global_name_server) end)),
    ?assertEqual([], on(Prot, fun() -> [N || N <- global:registered_names(), lists:member(N, [seccomp_ct_sync1, seccomp_ct_sync2,
                                                                                             seccomp_ct_sync3, seccomp_ct_sync4])] end)),
    {Fresh, _} = start(fresh, plain),
    ?assertEqual(ProtNode, on(Fresh, fun() -> rpc:call(ProtNode, erlang, node, [], 2000) end)),
    stop([Fresh, Att, Prot]).

%% A sync has one `exchange' and one `resolved', with the tag this node
%% gave the peer for it: a second of either crashed `global' (and
%% kernel_sup would stop the node). The node's own sync with the peer
%% carries on.
global_sync_steps_come_once(_Config) ->
    Me = seccomp_ct_syncs@localhost,
    {Prot, ProtNode, Server, C, Tag, P} = raw_sync(Me, 5),
    Steps = [{exchange, Me, [], [], Tag}, {resolved, Me, [], [], unused, [], Tag}],
    [begin
         ok = seccomp_dist_raw:send(C, {6, P, '', global_name_server}, {'$gen_cast', Step}),
         timer:sleep(200)
     end || Step <- Steps ++ Steps ++ Steps],
    timer:sleep(500),
    seccomp_dist_raw:close(C),
    ?assertEqual(Server, on(Prot, fun() -> whereis(global_name_server) end)),
    {Fresh, _} = start(fresh, plain),
    ?assertEqual(ProtNode, on(Fresh, fun() -> rpc:call(ProtNode, erlang, node, [], 2000) end)),
    stop([Fresh, Prot]).

%% `global''s locker asks a peer's name server for a lock (a `set_lock'
%% call) and takes a boolean for an answer: `yes' (the answer to
%% `register') crashed it, and with it `global' and the node. A reply goes
%% to the process whose call it answers, with an answer that call takes;
%% nothing else goes to the helpers.
global_replies_answer_their_call(_Config) ->
    Me = seccomp_ct_replies@localhost,
    {Prot, ProtNode, Server, C, Tag, P} = raw_sync(Me, 7),
    ToServer = {6, seccomp_dist_raw:pid(C, 50), '', global_name_server},
    ok = seccomp_dist_raw:send(C, ToServer, {'$gen_cast', {init_connect, {6, 77}, Me, {locker, no_pid, #{}, P}}}),
    timer:sleep(300),
    ok = seccomp_dist_raw:send(C, ToServer, {'$gen_cast', {lock_set, P, true, [], Tag}}),
    {Locker, CallTag} = lock_call(C, 30),
    Registrar = on(Prot, fun() -> hd([L || L <- element(2, process_info(whereis(global_name_server), links)),
                                           is_pid(L), L =/= Locker,
                                           {current_function, {global, loop_the_registrar, 0}} =:=
                                               process_info(L, current_function)]) end),
    Unshown = on(Prot, fun() -> make_ref() end),
    Sends = [{22, P, Locker, {CallTag, Answer}} || Answer <- [yes, ok, perhaps, {true}]]
        %% the right answer, to another helper, and an answer to a call never made
        ++ [{22, P, Registrar, {CallTag, true}}, {22, P, Locker, {{Unshown, Me}, true}}]
        %% what the name server takes, to a helper (whose catch-all logs it)
        ++ [{22, P, Locker, {'$gen_cast', {in_sync, Me, true}}}],
    [begin ok = seccomp_dist_raw:send(C, {Op, From, To}, Msg), timer:sleep(200) end || {Op, From, To, Msg} <- Sends],
    timer:sleep(300),
    ?assertMatch(#{{send, refused} := 7}, maps:get(Me, on(Prot, fun() -> seccomp_dist:stats() end))),
    ?assertEqual({Server, Locker}, on(Prot, fun() -> {whereis(global_name_server), Locker} end)),
    %% None of them was taken: the locker still waits for its answer, and
    %% takes the boolean.
    Waits = fun() -> on(Prot, fun() -> {current_stacktrace, S} = process_info(Locker, current_stacktrace),
                                       lists:keymember(set_lock_on_nodes, 2, S) end) end,
    ?assert(Waits()),
    ok = seccomp_dist_raw:send(C, {22, P, Locker}, {CallTag, false}),
    timer:sleep(300),
    ?assertNot(Waits()),
    seccomp_dist_raw:close(C),
    {Fresh, _} = start(fresh, plain),
    ?assertEqual(ProtNode, on(Fresh, fun() -> rpc:call(ProtNode, erlang, node, [], 2000) end)),
    %% global's own calls and answers between the nodes still work.
    Named = on(Fresh, fun() ->
                              ok = global:sync(),
                              Pid = spawn(fun() -> receive stop -> ok end end),
                              yes = global:register_name(seccomp_ct_replied, Pid),
                              Pid
                      end),
    ?assertEqual(Named, on(Prot, fun() -> global:whereis_name(seccomp_ct_replied) end)),
    stop([Fresh, Prot]).

%% The locker's `set_lock' call to the raw client `C': its pid and the
%% tag its reply goes back with.
lock_call(C, Tries) ->
    Calls = [{Locker, Tag} || {{6, Locker, _, global_name_server},
                               {'$gen_call', {Locker, Tag}, {set_lock, _}}} <- seccomp_dist_raw:flush(C)],
    case Calls of
        [Call | _] -> Call;
        [] when Tries > 0 -> lock_call(C, Tries - 1)
    end.

%% A server that registers its name (as a kernel server restarting does)
%% and then shows the peer its new pid is judged by that name from its
%% first message on: the receiver's and the driver's copies of the
%% registry, made just before it registered, do not name it yet. The peer
%% triggers each start with a message that goes to the filter (it carries
%% a new atom), which brings both copies up to date, then answers the new
%% process at once. A process that registers nothing gets the answer.
new_servers_are_judged_by_name_at_once(_Config) ->
    {Prot, ProtNode} = start(protected, seccomp),
    C = seccomp_dist_raw:connect(ProtNode, seccomp_ct_late@localhost, ?COOKIE),
    Me = seccomp_dist_raw:pid(C, 7),
    StarterPid = on(Prot, fun() -> spawn(?MODULE, starter, [Me, []]) end),
    Starter = receive_from(C, starter),
    Rounds = [{I, Register} || I <- lists:seq(1, 10), Register <- [true, false]],
    [begin
         Go = {go, list_to_atom("seccomp_ct_go" ++ integer_to_list(I) ++ atom_to_list(Register)), Register},
         ok = seccomp_dist_raw:send(C, {22, Me, Starter}, Go),
         New = receive_from(C, started),
         ok = seccomp_dist_raw:send(C, {22, Me, New}, answer),
         timer:sleep(400)
     end || {I, Register} <- Rounds],
    timer:sleep(1000),
    seccomp_dist_raw:close(C),
    Got = on(Prot, fun() -> StarterPid ! {report, self()}, receive {report, R} -> R end end),
    Outcomes = lists:usort([{Register, Outcome} || {_Tag, Register, Outcome} <- Got]),
    ?assertEqual({20, [{false, answered}, {true, none}]}, {length(Got), Outcomes}),
    stop([Prot]).

%% On the protected node: shows itself to `Peer', then for each `{go, Tag,
%% Register}' starts a process that registers a name of its own if
%% `Register' and shows itself to `Peer', and notes whether it is answered.
starter(Peer, Got) ->
    Peer ! {starter, self()},
    start_on_go(Peer, Got).

start_on_go(Peer, Got) ->
    receive
        {go, Tag, Register} ->
            Self = self(),
            spawn(fun() ->
                          _ = Register andalso register(list_to_atom(atom_to_list(Tag) ++ "_server"), self()),
                          Peer ! {started, self()},
                          Self ! {Tag, Register, receive answer -> answered after 300 -> none end}
                  end),
            receive {Tag, _, _} = Outcome -> start_on_go(Peer, [Outcome | Got]) end;
        {report, From} ->
            From ! {report, Got}
    end.

%% The pid the protected node sent the raw client `C' as `{Label, Pid}'
%% (within five seconds).
receive_from(C, Label) -> receive_from(C, Label, erlang:monotonic_time(millisecond) + 5000).

receive_from(C, Label, Until) ->
    case seccomp_dist_raw:recv(C, max(0, Until - erlang:monotonic_time(millisecond))) of
        {_Ctl, {Label, Pid}} -> Pid;
        timeout -> error({nothing_from_the_node, Label});
        _Other -> receive_from(C, Label, Until)
    end.

%% A name clash in a peer's `exchange' is resolved here (this node's name
%% sorts first) by the name's resolver, which kills one of the two processes
%% (the one on the node whose name sorts last): a peer that named a third
%% node's process for a name this node holds made this node kill it, or
%% any process there (init). Clashes are between this node's and the
%% peer's processes only; the node's own sync with the peer goes on.
global_clashes_kill_nothing_on_third_nodes(_Config) ->
    {Prot, ProtNode} = start(protected, seccomp),
    Server = on(Prot, fun() -> whereis(global_name_server) end),
    {Third, ThirdNode} = start(third, plain),
    {Att, AttNode} = start(zattacker, plain),
    true = ThirdNode > ProtNode andalso AttNode > ProtNode,
    Target = on(Third, fun() -> spawn(fun() -> receive stop -> ok end end) end),
    Held = on(Prot, fun() ->
                            true = net_kernel:connect_node(ThirdNode),
                            ok = global:sync(),
                            H = spawn(fun() -> receive stop -> ok end end),
                            yes = global:register_name(seccomp_ct_clash, H),
                            H
                    end),
    %% The attacker's global holds the name for the third node's process
    %% (written into its own table), and syncs with the protected node.
    ok = on(Att, fun() ->
                         _ = sys:replace_state(global_name_server,
                                               fun(S) ->
                                                       true = ets:insert(global_names, {seccomp_ct_clash, Target,
                                                                                        fun global:random_exit_name/3,
                                                                                        make_ref()}),
                                                       S
                                               end),
                         true = net_kernel:connect_node(ProtNode),
                         ok
                 end),
    timer:sleep(3000),
    ?assert(on(Third, fun() -> is_process_alive(Target) end)),
    ?assertEqual({Server, Held}, on(Prot, fun() -> {whereis(global_name_server), global:whereis_name(seccomp_ct_clash)} end)),
    stop([Att, Third, Prot]).

%% A protected node, its global_name_server, and the raw client `Me' whose
%% sync with it has begun: the client's connection, the sync's tag and the
%% client's pid number `Id'.
raw_sync(Me, Id) ->
    {Prot, ProtNode} = start(protected, seccomp),
    Server = on(Prot, fun() -> whereis(global_name_server) end),
    C = seccomp_dist_raw:connect(ProtNode, Me, ?COOKIE),
    {Prot, ProtNode, Server, C, sync_tag(C, 10), seccomp_dist_raw:pid(C, Id)}.

%% The tag of the sync the node starts with the raw client `C'.
sync_tag(C, Tries) ->
    case [T || {_, {'$gen_cast', {init_connect, {_, T}, _, _}}} <- seccomp_dist_raw:flush(C)] of
        [Tag | _] -> Tag;
        [] when Tries > 0 -> sync_tag(C, Tries - 1)
    end.

%% `global''s locker is shown to every peer and judged as
%% global_name_server, also while it waits in `gen_server' for a peer that
%% does not answer (a node whose own global is suspended): a message that
%% would crash it (and with it global and the node) never reaches it.
global_helpers_are_judged_whatever_they_wait_in(_Config) ->
    {Prot, ProtNode} = start(protected, seccomp),
    Server = on(Prot, fun() -> whereis(global_name_server) end),
    {Blocker, _} = start(blocker, plain),
    {Killer, _} = start(killer, plain),
    %% A process of each attacker keeps its own global suspended.
    Hold = fun() ->
                   G = whereis(global_name_server),
                   H = spawn(fun() ->
                                     erlang:suspend_process(G),
                                     receive release -> erlang:resume_process(G) end
                             end),
                   register(seccomp_ct_hold, H),
                   true = net_kernel:connect_node(ProtNode),
                   G
           end,
    _ = on(Blocker, fun() ->
                            _ = Hold(),
                            gen_server:cast({global_name_server, ProtNode},
                                            {init_connect, {7, make_ref()}, node(), {locker, x, [], self()}})
                    end),
    timer:sleep(1000),
    Sent = on(Killer, fun() ->
                              G = Hold(),
                              Locker = shown_locker(G, 50),
                              [Locker ! M || M <- [{his_the_locker, self(), bad_known, x, y}, {get_state, 1, 2}]],
                              Locker
                      end),
    ct:log("locker ~p", [Sent]),
    timer:sleep(500),
    [on(P, fun() -> seccomp_ct_hold ! release end) || P <- [Blocker, Killer]],
    timer:sleep(3000),
    ?assertEqual({ProtNode, Server, true},
                 on(Prot, fun() -> {node(), whereis(global_name_server), is_process_alive(Sent)} end)),
    stop([Killer, Blocker, Prot]).

%% A peer that makes kernel servers answer it (global's `set_lock' echoes
%% its tag) and reads nothing fills its socket; the runtime then suspends
%% every local process that sends to it. A send that cannot go on for a
%% quarter of `net_ticktime' closes the connection: the servers go on.
peers_that_stop_reading_are_dropped(_Config) ->
    {Prot, ProtNode} = start(protected, seccomp, ["-kernel", "net_ticktime", "8"]),
    Raw = seccomp_ct_stall@localhost,
    Up = fun() -> on(Prot, fun() -> lists:member(Raw, nodes()) end) end,
    C = seccomp_dist_raw:connect(ProtNode, Raw, ?COOKIE),
    Me = seccomp_dist_raw:pid(C, 7),
    ok = seccomp_dist_raw:stall(C),
    Tag = binary:copy(<<"t">>, 4096),
    Sent = length([ok = seccomp_dist_raw:send(C, {6, Me, '', global_name_server},
                                              {'$gen_call', {Me, {Tag, N}}, {set_lock, {seccomp_ct_res, Me}}})
                   || N <- lists:seq(1, 8000)]),
    ?assert(Up()),
    Start = erlang:monotonic_time(millisecond),
    ?assertEqual(dropped, wait_until(fun() -> not Up() end, 15000)),
    ct:log("~p calls; dropped after ~p ms", [Sent, erlang:monotonic_time(millisecond) - Start]),
    ?assertMatch({Time, true} when Time < 2000000,
                 on(Prot, fun() -> timer:tc(fun() -> global:set_lock({seccomp_ct_other, self()}, [node()], 0) end) end)),
    seccomp_dist_raw:close(C),
    stop([Prot]).

%% A peer that reads nothing and sends frame after frame the node answers
%% (over `max_message_bytes': a note to its sender; a refused spawn
%% request: a failed spawn reply; an allowed one: a process whose exit the
%% peer monitors) makes no process, message or output pile up for the
%% answers: the node's process count and memory stay near where they were
%% while it floods, and the node answers.
oversized_floods_from_peers_that_do_not_read(_Config) ->
    Policy = "#{default => #{rpc => [{erlang, node, 0}], max_message_bytes => 300}}",
    {Prot, ProtNode} = start(protected, {seccomp, Policy}),
    Counts = fun() -> on(Prot, fun() -> {erlang:system_info(process_count), erlang:memory(total)} end) end,
    %% `MaxMb': what may stay of the calls made before the output stalled
    %% (the exit signals of the processes allowed spawn requests started wait
    %% in the runtime until the connection closes)
    Flood = fun(Name, Frame, MaxMb) ->
                    %% a small receive buffer (the kernel takes little of
                    %% what the node sends), frames sent 16 KB at a time
                    C = seccomp_dist_raw:connect(ProtNode, Name, ?COOKIE, #{recbuf => 4096}),
                    ok = seccomp_dist_raw:stall(C),
                    ok = inet:setopts(maps:get(sock, C), [{packet, raw}]),
                    F = Frame(seccomp_dist_raw:pid(C, 7)),
                    Batch = binary:copy(<<(byte_size(F)):32, F/binary>>, max(1, 16000 div byte_size(F))),
                    {Procs0, Mem0} = Counts(),
                    Flooder = spawn_link(fun() -> flood(C, Batch) end),
                    Samples = [begin timer:sleep(400), Counts() end || _ <- lists:seq(1, 10)],
                    unlink(Flooder),
                    exit(Flooder, kill),
                    ct:log("~p: processes ~p, memory ~p, then ~p; ~p", [Name, Procs0, Mem0, Samples,
                                                                       on(Prot, fun() -> seccomp_dist:stats() end)]),
                    %% what is left while it still floods (the calls it made
                    %% before its output stalled come and go)
                    Late = lists:nthtail(7, Samples),
                    ?assert(lists:max([P || {P, _} <- Late]) < Procs0 + 1000),
                    ?assert(lists:max([M || {_, M} <- Late]) < Mem0 + MaxMb * 1024 * 1024),
                    seccomp_dist_raw:close(C)
            end,
    Flood(seccomp_ct_flood@localhost,
          fun(Me) -> <<112, (term_to_binary({22, Me, Me}))/binary, (term_to_binary(binary:copy(<<1>>, 400)))/binary>> end,
          128),
    Flood(seccomp_ct_spawns@localhost,
          fun(Me) -> <<112, (term_to_binary({29, make_ref(), Me, Me, {os, cmd, 1}, []}))/binary,
                       (term_to_binary([binary:copy(<<"x">>, 50)]))/binary>> end,
          128),
    Flood(seccomp_ct_allowed@localhost,
          fun(Me) -> <<112, (term_to_binary({29, make_ref(), Me, Me, {erlang, node, 0}, [monitor]}))/binary,
                       (term_to_binary([]))/binary>> end,
          512),
    Flood(seccomp_ct_rex@localhost,
          fun(Me) -> <<112, (term_to_binary({6, Me, '', rex}))/binary,
                       (term_to_binary({'$gen_call', {Me, make_ref()}, {call, erlang, node, [], Me}}))/binary>> end,
          128),
    ?assertEqual(ProtNode, on(Prot, fun() -> node() end)),
    stop([Prot]).

%% A peer that reads nothing gets started for it only what it sends before
%% its output stalls (until the kernel holds what it can of the answers,
%% and 20 ms more; calls past what `rex' has waiting are refused): eight
%% such peers at once, flooding allowed `rex' calls
%% with 64 KB arguments (each answer as large), leave the node a bounded
%% number of processes and bytes, all gone when the connections close.
peers_that_stop_reading_start_little(_Config) ->
    {Prot, ProtNode} = start(protected, {seccomp, "#{default => #{rpc => [{erlang, iolist_to_binary, 1}]}}"}),
    {Procs0, Mem0} = on(Prot, fun() -> {erlang:system_info(process_count), erlang:memory(total)} end),
    Procs = peak(Prot, fun() -> erlang:system_info(process_count) end),
    Mem = peak(Prot, fun() -> erlang:memory(total) end),
    Bin = binary:copy(<<"z">>, 65536),
    Conns = [begin
                 Name = list_to_atom("seccomp_ct_unread" ++ integer_to_list(I) ++ "@localhost"),
                 C = seccomp_dist_raw:connect(ProtNode, Name, ?COOKIE, #{recbuf => 4096}),
                 ok = seccomp_dist_raw:stall(C),
                 ok = inet:setopts(maps:get(sock, C), [{packet, raw}]),
                 Me = seccomp_dist_raw:pid(C, 7),
                 Call = {'$gen_call', {Me, make_ref()}, {call, erlang, iolist_to_binary, [Bin], Me}},
                 F = <<112, (term_to_binary({6, Me, '', rex}))/binary, (term_to_binary(Call))/binary>>,
                 {C, spawn_link(fun() -> flood(C, <<(byte_size(F)):32, F/binary>>) end)}
             end || I <- lists:seq(1, 8)],
    timer:sleep(4000),
    {PeakProcs, PeakMem} = {Procs(), Mem()},
    ct:log("processes ~p, peak ~p; memory ~p, peak ~p; ~p",
           [Procs0, PeakProcs, Mem0, PeakMem, on(Prot, fun() -> seccomp_dist:stats() end)]),
    [begin unlink(F), exit(F, kill), seccomp_dist_raw:close(C) end || {C, F} <- Conns],
    ?assert(PeakProcs < Procs0 + 8 * 100),
    ?assert(PeakMem < Mem0 + 8 * (16 bsl 20)),
    eventually(fun() -> on(Prot, fun() -> erlang:system_info(process_count) end) < Procs0 + 20 end),
    ?assertEqual(ProtNode, on(Prot, fun() -> node() end)),
    stop([Prot]).

flood(C, Frame) ->
    case seccomp_dist_raw:raw(C, Frame) of
        ok -> flood(C, Frame);
        {error, _} -> ok
    end.

%% A large message to a named process is decoded to be judged: the
%% connection keeps none of that heap afterwards, and a reply-shaped
%% message global does not expect (its catch-all logs the whole term, at
%% many times its size) never reaches it.
judged_messages_leave_nothing_behind(_Config) ->
    {Prot, ProtNode} = start(protected, seccomp),
    {Att, AttNode} = start(attacker, plain),
    Ref = on(Prot, fun() -> make_ref() end),
    ok = on(Att, fun() ->
                         true = net_kernel:connect_node(ProtNode),
                         {global_name_server, ProtNode} ! {Ref, lists:duplicate(2000000, 0)},
                         {rex, ProtNode} ! {self(), lists:duplicate(2000000, 0)},
                         ok
                 end),
    timer:sleep(2000),
    {Connection, Global} =
        on(Prot, fun() ->
                         {_, Ctrl} = lists:keyfind(AttNode, 1, erlang:system_info(dist_ctrl)),
                         %% a TCP connection's controller is the driver port
                         {links, Procs} = case is_port(Ctrl) of
                                              true -> erlang:port_info(Ctrl, links);
                                              false -> process_info(Ctrl, links)
                                          end,
                         {lists:sum([M || P <- [Ctrl | Procs], is_pid(P), {memory, M} <- [process_info(P, memory)]]),
                          element(2, process_info(whereis(global_name_server), memory))}
                 end),
    ct:log("connection ~p bytes, global ~p bytes", [Connection, Global]),
    ?assert(Connection < 4000000),
    ?assert(Global < 4000000),
    stop([Att, Prot]).

%% A peer's demonitor names a monitor by a reference of its own node: the
%% runtime takes any reference for the monitor it names, so one a local
%% process made (shown in its monitor of the peer's process) would cancel
%% that monitor (and guessed ones near it crashed the runtime). A monitor
%% exit must name a monitor this node set up on the peer.
peers_demonitor_only_their_own_monitors(_Config) ->
    {Prot, ProtNode} = start(protected, seccomp, ["-kernel", "start_pg", "true"]),
    Pg = on(Prot, fun() -> whereis(pg) end),
    C = seccomp_dist_raw:connect(ProtNode, seccomp_ct_demon@localhost, ?COOKIE),
    P = seccomp_dist_raw:pid(C, 11),
    Q = seccomp_dist_raw:pid(C, 12),
    ok = seccomp_dist_raw:send(C, {6, P, '', pg}, {discover, P}),
    Ref = monitor_of(C, P, 50),
    ok = seccomp_dist_raw:send(C, {6, P, '', pg}, {join, P, seccomp_ct_ghosts, [P]}),
    ok = seccomp_dist_raw:send(C, {20, P, Pg, Ref}),
    [ok = seccomp_dist_raw:send(C, {20, P, Pg, R}) || R <- nearby_refs(Ref, 3000)],
    %% a monitor exit for a scope pg monitors, by a reference it did not make
    ok = seccomp_dist_raw:send(C, {6, Q, '', pg}, {discover, Q}),
    _ = monitor_of(C, Q, 50),
    [ok = seccomp_dist_raw:send(C, {21, Q, Pg, R, noproc}) || R <- nearby_refs(Ref, 300)],
    timer:sleep(500),
    ?assertEqual([P], on(Prot, fun() -> pg:get_members(seccomp_ct_ghosts) end)),
    ?assertEqual(true, on(Prot, fun() -> lists:member({process, Q}, element(2, process_info(Pg, monitors))) end)),
    seccomp_dist_raw:close(C),
    %% pg's monitor fires when the peer goes: no member of a node that is gone
    ?assertEqual(dropped, wait_until(fun() -> on(Prot, fun() -> pg:get_members(seccomp_ct_ghosts) end) =:= [] end, 10000)),
    ?assertEqual({ProtNode, Pg}, on(Prot, fun() -> {node(), whereis(pg)} end)),
    stop([Prot]).

%% The reference of the monitor the node set up on `Pid', from what the raw
%% client received.
monitor_of(_C, _Pid, 0) -> exit(no_monitor);
monitor_of(C, Pid, N) ->
    case seccomp_dist_raw:recv(C, 200) of
        {{19, _From, Pid, Ref}, _} -> Ref;
        _ -> monitor_of(C, Pid, N - 1)
    end.

%% References of the same node made just before `Ref' (its first word counted down).
nearby_refs(Ref, N) ->
    <<131, 90, Len:16, Rest/binary>> = term_to_binary(Ref),
    NodeSize = byte_size(Rest) - 4 - 4 * Len,
    <<Node:NodeSize/binary, Creation:32, First:32, More/binary>> = Rest,
    [binary_to_term(<<131, 90, Len:16, Node/binary, Creation:32, (First - I):32, More/binary>>)
     || I <- lists:seq(1, min(N, First))].

wait_until(Cond, Left) when Left =< 0 -> Cond() andalso dropped;
wait_until(Cond, Left) ->
    case Cond() of
        true -> dropped;
        false -> timer:sleep(200), wait_until(Cond, Left - 200)
    end.

%% The locker of `Node''s global, from the `init_connect' it sent this
%% node's (suspended) global.
shown_locker(_G, 0) -> exit(no_locker);
shown_locker(G, N) ->
    {messages, Ms} = process_info(G, messages),
    case [L || {'$gen_cast', {init_connect, _, _, {locker, _, _, L}}} <- Ms] of
        [L | _] -> L;
        [] -> timer:sleep(100), shown_locker(G, N - 1)
    end.

io_request(Request) ->
    Ref = make_ref(),
    group_leader() ! {io_request, self(), Ref, Request},
    receive {io_reply, Ref, Reply} -> Reply after 1000 -> timeout end.

%% OTP 29's pg appends and subtracts the pid lists of `update' and
%% `local_data': a bare pid there would make it raise.
pg_lists_are_lists(_Config) ->
    P = peer_pid(),
    Pg = fun(Msg) -> seccomp_dist_shapes:check(pg, Msg, node(P)) end,
    [?assertMatch({refused, _}, Pg(M), M)
     || M <- [{update, P, [{g, P, []}]}, {update, P, [{g, [], P}]}, {local_data, P, 1, #{g => P}},
              {'$gen_cast', {local_data, P, 1, #{g => P}}}]],
    ?assertEqual(ok, Pg({discover, P})).

%% A peer deletes, through global's sync messages, only its own names (else
%% it could register a third node's next), and inserts or registers a name
%% this node or a third node holds only for the same process: `global'
%% inserts over what it holds, with no resolver.
global_names_of_others_stay(_Config) ->
    {Prot, ProtNode} = start(protected, seccomp),
    {B, BNode} = start(third, plain),
    {Att, AttNode} = start(attacker, plain),
    BPid = on(B, fun() ->
                         true = net_kernel:connect_node(ProtNode),
                         P = spawn(fun() -> receive stop -> ok end end),
                         yes = global:register_name(seccomp_ct_bsvc, P),
                         ok = global:sync(),
                         P
                 end),
    Local = on(Prot, fun() ->
                             P = spawn(fun() -> receive stop -> ok end end),
                             yes = global:register_name(seccomp_ct_local, P),
                             ok = global:sync(),
                             P
                     end),
    ?assertEqual({BPid, Local},
                 on(Prot, fun() -> {global:whereis_name(seccomp_ct_bsvc), global:whereis_name(seccomp_ct_local)} end)),
    Resolve = fun global:random_exit_name/3,
    Taken = on(Att, fun() ->
                            true = net_kernel:connect_node(ProtNode),
                            ok = global:sync(),
                            Me = spawn(fun() -> receive stop -> ok end end),
                            GNS = {global_name_server, ProtNode},
                            %% global inserts over what it holds, with no resolver
                            gen_server:cast(GNS, {new_nodes, AttNode, [{delete, seccomp_ct_bsvc}], [], [], []}),
                            gen_server:cast(GNS, {new_nodes, AttNode, [{insert, {N, Me, Resolve}}
                                                                       || N <- [seccomp_ct_bsvc, seccomp_ct_local]],
                                                  [], [], []}),
                            [attempt(fun() -> gen_server:call(GNS, {register, N, Me, Resolve}, 1000) end)
                             || N <- [seccomp_ct_bsvc, seccomp_ct_local]]
                    end),
    ct:log("~p", [Taken]),
    timer:sleep(500),
    ?assertEqual({BPid, Local},
                 on(Prot, fun() -> {global:whereis_name(seccomp_ct_bsvc), global:whereis_name(seccomp_ct_local)} end)),
    _ = BNode,
    stop([Att, B, Prot]).

%% Two carrier nodes sending large messages to each other at once: a
%% connection waiting for a socket its peer does not read must not stop
%% reading its own, or both wait forever.
both_directions_at_once(_Config) ->
    {A, ANode} = start(a, seccomp),
    {B, BNode} = start(b, seccomp),
    Sink = fun() -> spawn(fun() -> sink() end) end,
    ASink = on(A, Sink),
    BSink = on(B, Sink),
    %% each side shows its sink to the other
    ok = on(B, fun() -> register(seccomp_ct_b, spawn(fun() -> receive {sink, _} -> ok end end)), ok end),
    ok = on(A, fun() -> {seccomp_ct_b, BNode} ! {sink, ASink}, ok end),
    ok = on(A, fun() -> register(seccomp_ct_a, spawn(fun() -> receive {sink, _} -> ok end end)), ok end),
    ok = on(B, fun() -> {seccomp_ct_a, ANode} ! {sink, BSink}, ok end),
    timer:sleep(300),
    Blast = fun(To) ->
                    fun() ->
                            Bin = binary:copy(<<7>>, 1 bsl 20),
                            [To ! {self(), size, 1 bsl 20, Bin} || _ <- lists:seq(1, 200)],
                            length([ok || _ <- lists:seq(1, 200), receive {got, _, _} -> true after 60000 -> false end])
                    end
            end,
    Self = self(),
    [spawn(fun() -> Self ! {Who, attempt(fun() -> on(P, Blast(To), 120000) end)} end)
     || {Who, P, To} <- [{a, A, BSink}, {b, B, ASink}]],
    Got = [receive {Who, N} -> {Who, N} after 150000 -> {Who, timeout} end || Who <- [a, b]],
    ?assertEqual([{a, 200}, {b, 200}], Got),
    stop([A, B]).

%% TLS ---------------------------------------------------------------------------------

%% `-ssl_dist_optfile' files made with a throwaway CA: `good' (a certificate
%% for this host), `other_host' (the same CA, another host), `no_cert' (the
%% CA only).
tls_opt_files(Dir) ->
    {ok, Host} = inet:gethostname(),
    %% SHA-256 signatures: ssl of OTP 27+ refuses the default (SHA-1) ones under TLS 1.3.
    Ec = [{key, {namedCurve, secp256r1}}, {digest, sha256}],
    Root = public_key:pkix_test_root_cert("seccomp CT CA", Ec),
    Write = fun(Name, Configs) ->
                    File = filename:join(Dir, Name),
                    ok = file:write_file(File, io_lib:format("~p.~n", [Configs])),
                    File
            end,
    For = fun(CertHost) ->
                  San = #'Extension'{extnID = ?'id-ce-subjectAltName', critical = false,
                                     extnValue = [{dNSName, CertHost}]},
                  Chain = #{root => Root, intermediates => [], peer => [{extensions, [San]} | Ec]},
                  #{server_config := S, client_config := C} =
                      public_key:pkix_test_data(#{server_chain => Chain, client_chain => Chain}),
                  [{server, S}, {client, C}]
          end,
    Good = For(Host),
    CaOnly = [{cacerts, proplists:get_value(cacerts, proplists:get_value(client, Good))}],
    #{good => Write("good.conf", Good),
      other_host => Write("other_host.conf", For("elsewhere.example")),
      no_cert => Write("no_cert.conf", [{server, CaOnly}, {client, CaOnly}])}.

%% Two nodes on the TLS carrier: the connection is TLS, and the policy, the
%% filter and the framing (a message over the bound is refused to its
%% sender) apply as over TCP; so they do to a node on OTP's inet_tls_dist.
tls_carrier_filters(Config) ->
    #{good := Good} = tls_opt_files(?config(dir, Config)),
    {Prot, ProtNode} = start(protected, {seccomp_tls, "#{default => #{rpc => [{erlang, node, 0}],
                                                                      max_message_bytes => 1048576}}", Good}),
    {Cli, CliNode} = start(client, {seccomp_tls, "#{}", Good}),
    ?assertEqual(ProtNode, on(Cli, fun() -> rpc:call(ProtNode, erlang, node, [], 5000) end)),
    ?assertEqual({badrpc, notsup}, on(Cli, fun() -> rpc:call(ProtNode, os, getpid, [], 5000) end)),
    ?assertMatch({ok, tls}, on(Prot, fun() ->
                                             {ok, Info} = net_kernel:node_info(CliNode),
                                             {ok, (proplists:get_value(address, Info))#net_address.protocol}
                                     end)),
    ok = on(Cli, fun() -> register(seccomp_ct_client, spawn(fun ?MODULE:echo_loop/0)), ok end),
    Sink = on(Prot, fun() ->
                            P = spawn(fun() -> sink() end),
                            {seccomp_ct_client, CliNode} ! {shown, P},
                            P
                    end),
    timer:sleep(200),
    Result = on(Cli, fun() ->
                             Sizes = [0, 64, 100000, 900000],
                             Got = [begin
                                        Sink ! {self(), size, S, binary:copy(<<7>>, S)},
                                        receive {got, S, G} -> G after 10000 -> timeout end
                                    end || S <- Sizes],
                             Sink ! {self(), size, 2 bsl 20, binary:copy(<<7>>, 2 bsl 20)},
                             Told = receive {seccomp_dist_refused, N, Why} -> {N, Why} after 10000 -> not_told end,
                             Sink ! {self(), size, 1, <<7>>},
                             After = receive {got, 1, G1} -> G1 after 10000 -> timeout end,
                             {Got, Told, After}
                     end),
    ?assertMatch({[0, 64, 100000, 900000], {ProtNode, {too_large, _, 1048576}}, 1}, Result),
    Stats = maps:get(CliNode, on(Prot, fun() -> seccomp_dist:stats() end)),
    ct:log("~p", [Stats]),
    ?assertMatch(#{{spawn_request, refused} := 1, {too_large, refused} := 1}, Stats),
    %% a node on OTP's inet_tls_dist with a certificate for its host
    {Otp, _} = start(otp_tls, {inet_tls, Good}),
    ?assertEqual(ProtNode, on(Otp, fun() -> rpc:call(ProtNode, erlang, node, [], 5000) end)),
    ?assertEqual({badrpc, notsup}, on(Otp, fun() -> rpc:call(ProtNode, os, getpid, [], 5000) end)),
    stop([Otp, Cli, Prot]).

%% A node whose certificate does not name its host (on the TLS carrier or on
%% OTP's inet_tls_dist), a node without a certificate, and a plain TCP node
%% are refused, whichever side connects.
tls_refuses_unproven_names(Config) ->
    #{good := Good, other_host := Other, no_cert := NoCert} = tls_opt_files(?config(dir, Config)),
    {Prot, ProtNode} = start(protected, {seccomp_tls, ?POLICY, Good}),
    {Wrong, WrongNode} = start(wrong_host, {seccomp_tls, ?POLICY, Other}),
    {Bare, BareNode} = start(no_cert, {seccomp_tls, ?POLICY, NoCert}),
    {Plain, _} = start(plain, plain),
    {OtpWrong, _} = start(otp_tls_wrong_host, {inet_tls, Other}),
    Connect = fun(From, To) -> on(From, fun() -> net_kernel:connect_node(To) end) end,
    ?assertEqual(false, Connect(Wrong, ProtNode)),
    ?assertEqual(false, Connect(Prot, WrongNode)),
    ?assertEqual(false, Connect(Bare, ProtNode)),
    ?assertEqual(false, Connect(Prot, BareNode)),
    ?assertEqual(false, Connect(Plain, ProtNode)),
    ?assertEqual(false, Connect(OtpWrong, ProtNode)),
    ?assertEqual([], on(Prot, fun() -> nodes() end)),
    %% the same node with a good certificate connects
    {Good2, _} = start(good, {seccomp_tls, ?POLICY, Good}),
    ?assertEqual(true, Connect(Good2, ProtNode)),
    stop([Good2, OtpWrong, Plain, Bare, Wrong, Prot]).

init(server) -> {ok, 0};
init(sup) -> {ok, {#{}, []}}.

handle_call(ping, _From, S) -> {reply, pong, S};
handle_call(_Req, _From, S) -> {reply, nope, S}.

handle_cast(_Req, S) -> {noreply, S}.
