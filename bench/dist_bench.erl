%% Helpers the distribution benchmark loads on its peer nodes.
-module(dist_bench).
-export([start_sink/0, throughput/3, latency/3, rpc_rate/2]).

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
