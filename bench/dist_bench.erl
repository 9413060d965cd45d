%% The distribution benchmark: `seccomp_dist' against `inet_tcp_dist' in the
%% same run (a plain client node sends to a server node on loopback), and
%% the filter's own cost per packet. `run/2' prints the table; the other
%% exports run on the peer nodes.
-module(dist_bench).
-export([run/2, start_sink/0, throughput/3, latency/3, rpc_rate/2]).

-define(POLICY, "#{default => #{rpc => [{erlang, node, 0}, {dist_bench, start_sink, 0}]}}").

%% Rounds of both carriers, one after the other: each figure is the median
%% over the rounds of its ratio within a round, so load that comes and goes
%% on the machine moves both carriers alike.
-define(ROUNDS, 9).

%% @doc Benchmark both carriers. `Ebin': the library's; `BenchDir': where
%% this module's beam is.
run(Ebin, BenchDir) ->
    Carriers = [{"inet_tcp_dist", []},
                {"seccomp_dist", ["-proto_dist", "seccomp", "-beam_seccomp", "dist_policy", ?POLICY]}],
    %% Every other round runs the carriers the other way round, so that
    %% going first (or right after the other's nodes stop) favours neither.
    Rounds = [maps:from_list([{Label, measure(Ebin, BenchDir, Args)}
                              || {Label, Args} <- case I rem 2 of
                                                      0 -> lists:reverse(Carriers);
                                                      1 -> Carriers
                                                  end])
              || I <- lists:seq(1, ?ROUNDS)],
    io:format("median of ~w rounds, each carrier's ratio to inet_tcp_dist in the same round~n", [?ROUNDS]),
    [print(Label, [maps:get(Label, Round) || Round <- Rounds], [maps:get("inet_tcp_dist", Round) || Round <- Rounds])
     || {Label, _} <- Carriers],
    filter_cost(),
    ok.

measure(Ebin, BenchDir, ServerArgs) ->
    Peer = fun(Name, Extra) ->
                   {ok, P, N} = peer:start(#{name => peer:random_name(Name), connection => standard_io,
                                             args => ["-setcookie", "bench", "-pa", Ebin, "-pa", BenchDir | Extra]}),
                   {P, N}
           end,
    {Server, ServerNode} = Peer(server, ServerArgs),
    {Client, _} = Peer(client, []),
    Call = fun(F, A) -> peer:call(Client, ?MODULE, F, [ServerNode | A], 300000) end,
    %% The server node's CPU time (all threads, user and system) per
    %% operation: less disturbed by other load on the machine than rates.
    Cpu = fun(F, A, N) ->
                  {T0, _} = peer:call(Server, erlang, statistics, [runtime]),
                  Rate = Call(F, A),
                  {T1, _} = peer:call(Server, erlang, statistics, [runtime]),
                  {Rate, (T1 - T0) * 1000 / N}
          end,
    {M64, C64} = Cpu(throughput, [64, 100000], 100000),
    {Rtt, CRtt} = Cpu(latency, [64, 3000], 3000),
    {Rpc, CRpc} = Cpu(rpc_rate, [10000], 10000),
    Row = #{m64 => M64, cpu_m64 => C64,
            m4k => Call(throughput, [4096, 20000]),
            m1m => Call(throughput, [1048576, 200]),
            rtt => Rtt, cpu_rtt => CRtt,
            rpc => Rpc, cpu_rpc => CRpc},
    peer:stop(Client),
    peer:stop(Server),
    Row.

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
              ["", Value(cpu_m64), Ratio(cpu_m64), Value(cpu_rtt), Ratio(cpu_rtt),
               Value(cpu_rpc), Ratio(cpu_rpc)]).

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

%% Messages per second of Size bytes to a process on Node.
throughput(Node, Size, N) ->
    Sink = erpc:call(Node, ?MODULE, start_sink, []),
    Msg = {msg, binary:copy(<<0>>, Size)},
    T0 = erlang:monotonic_time(microsecond),
    Sink ! {expect, N, self()},
    send_n(Sink, Msg, N),
    receive done -> ok end,
    N * 1000000 / max(1, erlang:monotonic_time(microsecond) - T0).

send_n(_Sink, _Msg, 0) -> ok;
send_n(Sink, Msg, N) -> Sink ! Msg, send_n(Sink, Msg, N - 1).

%% Microseconds per round trip.
latency(Node, Size, N) ->
    Sink = erpc:call(Node, ?MODULE, start_sink, []),
    Msg = binary:copy(<<0>>, Size),
    T0 = erlang:monotonic_time(microsecond),
    [begin Sink ! {ping, self(), Msg}, receive {pong, _} -> ok end end || _ <- lists:seq(1, N)],
    (erlang:monotonic_time(microsecond) - T0) / N.

%% rpc calls per second.
rpc_rate(Node, N) ->
    T0 = erlang:monotonic_time(microsecond),
    [Node = erpc:call(Node, erlang, node, []) || _ <- lists:seq(1, N)],
    N * 1000000 / max(1, erlang:monotonic_time(microsecond) - T0).
