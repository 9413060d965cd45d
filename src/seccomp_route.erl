%% @doc Calls that a checked apply (and the sandbox) carry out through our own
%% wrappers, so that going through OTP cannot shed restrictions: a
%% supervisor asked for a child by a restricted process starts it restricted.
-module(seccomp_route).

-export([call/3]).

%% @doc Perform an allowed call.
-spec call(module(), atom(), [term()]) -> term().
call(supervisor, start_child, [Sup, Spec]) ->
    seccomp_supervisor:start_child(Sup, Spec);
call('Elixir.Supervisor', start_child, [Sup, Spec]) ->
    seccomp_supervisor:start_child(Sup, elixir_spec(Spec));
call('Elixir.DynamicSupervisor', start_child, [Sup, Spec]) ->
    seccomp_supervisor:start_dynamic_child(Sup, elixir_spec(Spec));
call('Elixir.Task.Supervisor', Kind, [Sup, Fun]) when is_function(Fun, 0) ->
    seccomp_supervisor:task(Sup, Fun, Kind);
call(erlang, F, [Dest, Msg]) when F =:= send; F =:= '!' ->
    %% A raw start_child request would have the supervisor start a free child.
    case Msg of
        {'$gen_call', _, {start_child, _}} ->
            case seccomp:is_restricted(self()) of
                true -> seccomp_violation:refuse({supervisor, start_child, 2});
                false -> erlang:send(Dest, Msg)
            end;
        _ ->
            erlang:send(Dest, Msg)
    end;
%% apply/3 is checked like the call it makes.
call(M, apply, [M2, F2, A2]) when M =:= erlang; M =:= 'Elixir.Kernel' -> seccomp:apply(M2, F2, A2);
%% Remote calls made through checked entry points carry the caller's layers.
call(rpc, call, [Node, M, F, A]) -> seccomp:rpc_call(Node, M, F, A);
call(rpc, call, [Node, M, F, A, T]) -> seccomp:rpc_call(Node, M, F, A, T);
call(rpc, cast, [Node, M, F, A]) -> seccomp:rpc_cast(Node, M, F, A);
call(erpc, call, [Node, M, F, A]) -> seccomp:erpc_call(Node, M, F, A);
call(erpc, call, [Node, M, F, A, T]) -> seccomp:erpc_call(Node, M, F, A, T);
call(erpc, cast, [Node, M, F, A]) -> seccomp_rpc:cast(Node, M, F, A);
call('Elixir.Node', spawn, [Node, Fun]) -> seccomp:spawn(Node, Fun);
call('Elixir.Node', spawn, [Node, M, F, A]) -> seccomp:spawn(Node, M, F, A);
call(M, F, Args) ->
    erlang:apply(M, F, Args).

elixir_spec(Spec) when is_list(Spec) -> Spec;
elixir_spec(Spec) -> 'Elixir.Supervisor':child_spec(Spec, []).
