%% The distribution benchmark: `seccomp_dist' against `inet_tcp_dist' in the
%% same run (a plain client node sends to a server node on loopback), and
%% the filter's own cost per packet. `run/2' prints the table; the other
%% exports run on the peer nodes.
-module(dist_bench).
-export([run/2, start_sink/0, time_messages/3, time_round_trips/3, time_rpcs/2]).

-define(POLICY, "#{default => #{rpc => [{erlang, node, 0}, {dist_bench, start_sink, 0}]}}").

%% Rounds: each starts a server node on each carrier and one plain client,
%% and measures every figure in slices that alternate between the carriers,
%% so that load that comes and goes on the machine meets both alike. Each
%% figure is the median over the rounds of its ratio within a round.
-define(ROUNDS, 9).

%% Figure, what the client times, operations per slice, slices per carrier.
-define(FIGURES, [{m64, {time_messages, [64]}, 25000, 4},
                  {m4k, {time_messages, [4096]}, 5000, 4},
                  {m1m, {time_messages, [1048576]}, 50, 4},
                  {rtt, {time_round_trips, [64]}, 750, 4},
                  {rpc, {time_rpcs, []}, 1000, 10}]).

%% @doc Benchmark both carriers. `Ebin': the library's; `BenchDir': where
%% this module's beam is.
run(Ebin, BenchDir) ->
    Carriers = [{"inet_tcp_dist", []},
                {"seccomp_dist", ["-proto_dist", "seccomp", "-beam_seccomp", "dist_policy", ?POLICY]}],
    Rounds = [measure_round(Ebin, BenchDir, Carriers) || _ <- lists:seq(1, ?ROUNDS)],
    io:format("median of ~w rounds, each carrier's ratio to inet_tcp_dist in the same round~n", [?ROUNDS]),
    [print(Label, [maps:get(Label, Round) || Round <- Rounds], [maps:get("inet_tcp_dist", Round) || Round <- Rounds])
     || {Label, _} <- Carriers],
    filter_cost(),
    ok.

%% One round: per carrier, every figure as a rate (or microseconds per
%% round trip) and the server's CPU time per operation.
measure_round(Ebin, BenchDir, Carriers) ->
    Peer = fun(Name, Extra) ->
                   {ok, P, N} = peer:start(#{name => peer:random_name(Name), connection => standard_io,
                                             args => ["-setcookie", "bench", "-pa", Ebin, "-pa", BenchDir | Extra]}),
                   {P, N}
           end,
    Servers = [{Label, Peer(server, Args)} || {Label, Args} <- Carriers],
    {Client, _} = Peer(client, []),
    %% The server node's CPU time (all threads, user and system) during a
    %% slice: less disturbed by other load on the machine than rates.
    Slice = fun({Server, Node}, {F, Args}, N) ->
                    {T0, _} = peer:call(Server, erlang, statistics, [runtime]),
                    Us = peer:call(Client, ?MODULE, F, [Node | Args] ++ [N], 300000),
                    {T1, _} = peer:call(Server, erlang, statistics, [runtime]),
                    {Us, (T1 - T0) * 1000}
            end,
    Totals = lists:foldl(
               fun({Figure, Work, N, Slices}, Acc) ->
                       %% Every other slice runs the carriers the other way round.
                       Order = fun(I) when I rem 2 =:= 0 -> lists:reverse(Servers);
                                  (_) -> Servers
                               end,
                       Sums = lists:foldl(
                                fun(I, Sum) ->
                                        lists:foldl(fun({Label, Server}, S) ->
                                                            {Us, Cpu} = Slice(Server, Work, N),
                                                            {U0, C0} = maps:get(Label, S, {0, 0}),
                                                            S#{Label => {U0 + Us, C0 + Cpu}}
                                                    end, Sum, Order(I))
                                end, #{}, lists:seq(1, Slices)),
                       maps:fold(fun(Label, {Us, Cpu}, A) ->
                                         Ops = N * Slices,
                                         Value = case Figure of
                                                     rtt -> Us / Ops;
                                                     _ -> Ops * 1000000 / max(1, Us)
                                                 end,
                                         maps:update_with(Label, fun(R) -> R#{Figure => Value,
                                                                              {cpu, Figure} => Cpu / Ops} end,
                                                          #{Figure => Value, {cpu, Figure} => Cpu / Ops}, A)
                                 end, Acc, Sums)
               end, #{}, ?FIGURES),
    peer:stop(Client),
    [peer:stop(Server) || {_, {Server, _}} <- Servers],
    Totals.

%% The median of each figure over the rounds, and of its ratio to the
%% baseline's in the same round.
print(Label, Rows, Bases) ->
    Median = fun(Xs) -> lists:nth((length(Xs) + 1) div 2, lists:sort(Xs)) end,
    Value = fun(K) -> Median([maps:get(K, R) || R <- Rows]) end,
    Ratio = fun(K) -> Median([maps:get(K, R) / max(maps:get(K, B), 1.0e-9) || {R, B} <- lists:zip(Rows, Bases)]) end,
    io:format("~-16s 64 B ~w msg/s (~.2fx)  4 KiB ~w msg/s (~.2fx)  1 MiB ~w msg/s (~.2fx)  "
              "rtt ~.1f us (~.2fx)  rpc ~w/s (~.2fx)~n",
              [Label, round(Value(m64)), Ratio(m64), round(Value(m4k)), Ratio(m4k),
               round(Value(m1m)), Ratio(m1m), Value(rtt), Ratio(rtt),
               round(Value(rpc)), Ratio(rpc)]),
    io:format("~-16s server CPU per op: 64 B msg ~.1f us (~.2fx)  round trip ~.1f us (~.2fx)  "
              "rpc ~.1f us (~.2fx)~n",
              ["", Value({cpu, m64}), Ratio({cpu, m64}), Value({cpu, rtt}), Ratio({cpu, rtt}),
               Value({cpu, rpc}), Ratio({cpu, rpc})]).

%% Nanoseconds the filter spends on one message packet to a pid the peer holds.
filter_cost() ->
    {ok, Policy} = seccomp_dist_policy:normalise(#{}),
    Caps = seccomp_dist_caps:new(),
    Sink = spawn(fun() -> receive stop -> ok end end),
    ok = seccomp_dist_caps:show(<<112, (term_to_binary({2, '', x}))/binary, (term_to_binary(Sink))/binary>>, Caps),
    Ctx = seccomp_dist_filter:context(a@b, seccomp_dist_policy:rules_for(a@b, Policy), Caps),
    [begin
         Packet = <<112, (term_to_binary({22, Sink, Sink}))/binary,
                    (term_to_binary({msg, binary:copy(<<0>>, Size)}))/binary>>,
         N = 20000,
         T0 = erlang:monotonic_time(nanosecond),
         loop(N, fun() -> seccomp_dist_filter:decide(Packet, Ctx) end),
         io:format("filter cost per ~w B message packet: ~w ns~n",
                   [Size, (erlang:monotonic_time(nanosecond) - T0) div N])
     end || Size <- [64, 4096, 1048576]],
    Sink ! stop,
    ok.

loop(0, _F) -> ok;
loop(N, F) -> _ = F(), loop(N - 1, F).

%%% On the peers -------------------------------------------------------------------

%% A process that receives N messages, then tells whoever asked.
start_sink() -> spawn(fun sink/0).

sink() ->
    receive
        {expect, N, From} -> drain(N), From ! done, sink();
        {ping, From, Msg} -> From ! {pong, Msg}, sink()
    end.

drain(0) -> ok;
drain(N) -> receive {msg, _} -> drain(N - 1) end.

%% Microseconds to send N messages of Size bytes to a process on Node
%% (until it has them all).
time_messages(Node, Size, N) ->
    Sink = erpc:call(Node, ?MODULE, start_sink, []),
    Msg = {msg, binary:copy(<<0>>, Size)},
    T0 = erlang:monotonic_time(microsecond),
    Sink ! {expect, N, self()},
    send_n(Sink, Msg, N),
    receive done -> ok end,
    erlang:monotonic_time(microsecond) - T0.

send_n(_Sink, _Msg, 0) -> ok;
send_n(Sink, Msg, N) -> Sink ! Msg, send_n(Sink, Msg, N - 1).

%% Microseconds for N round trips of Size bytes.
time_round_trips(Node, Size, N) ->
    Sink = erpc:call(Node, ?MODULE, start_sink, []),
    Msg = binary:copy(<<0>>, Size),
    T0 = erlang:monotonic_time(microsecond),
    [begin Sink ! {ping, self(), Msg}, receive {pong, _} -> ok end end || _ <- lists:seq(1, N)],
    erlang:monotonic_time(microsecond) - T0.

%% Microseconds for N rpc calls, one after another.
time_rpcs(Node, N) ->
    T0 = erlang:monotonic_time(microsecond),
    [Node = erpc:call(Node, erlang, node, []) || _ <- lists:seq(1, N)],
    erlang:monotonic_time(microsecond) - T0.
