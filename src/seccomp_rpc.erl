%% @doc Remote calls that carry the caller's restrictions to the other node.
%%
%% A restricted process must not gain rights by asking another node to do the
%% work: the call is checked here (the remote call itself, then the target),
%% and runs there in a process restricted by the same layers. The other node
%% must run beam_seccomp; if it does not, the call fails (closed). Any other
%% way for a restricted process to start a process on another node (the
%% spawn BIFs with a node, `rpc' and `erpc' functions not carried here,
%% `Node.spawn_link'...) is refused: the tracer that restricts local
%% children does not reach other nodes.
-module(seccomp_rpc).

-seccomp_routes([{rpc, '_', '_'}, {erpc, '_', '_'}, {'Elixir.Node', '_', '_'},
                 {erlang, spawn, 2}, {erlang, spawn, 4}, {erlang, spawn_link, 2},
                 {erlang, spawn_link, 4}, {erlang, spawn_monitor, 2}, {erlang, spawn_monitor, 4},
                 {erlang, spawn_opt, 3}, {erlang, spawn_opt, 5}, {erlang, spawn_request, '_'}]).

-export([call/5, rpc_call/5, cast/4, spawn/4, run/4, route/3]).
-compile({no_auto_import, [spawn/4]}).

%% @doc Like `erpc:call/5', under the caller's layers on both nodes.
-spec call(node(), module(), atom(), [term()], timeout()) -> term().
call(Node, M, F, A, Timeout) ->
    allowed({erpc, call, 5}, M, F, A),
    erpc:call(Node, ?MODULE, run, [layers(), M, F, A], Timeout).

%% @doc Like `rpc:call/5': failures come back as `{badrpc, Reason}'.
-spec rpc_call(node(), module(), atom(), [term()], timeout()) -> term().
rpc_call(Node, M, F, A, Timeout) ->
    try call(Node, M, F, A, Timeout)
    catch
        error:{seccomp_violation, _} = V -> erlang:error(V);
        error:{erpc, Reason} -> {badrpc, Reason};
        Class:Reason -> {badrpc, {'EXIT', {Class, Reason}}}
    end.

%% @doc Like `erpc:cast/4', under the caller's layers on both nodes.
-spec cast(node(), module(), atom(), [term()]) -> ok.
cast(Node, M, F, A) ->
    allowed({erpc, cast, 4}, M, F, A),
    erpc:cast(Node, ?MODULE, run, [layers(), M, F, A]).

%% @doc Like `erlang:spawn/4', under the caller's layers on both nodes.
-spec spawn(node(), module(), atom(), [term()]) -> pid().
spawn(Node, M, F, A) ->
    allowed({erlang, spawn, 4}, M, F, A),
    %% Only the no_spawn check: the layers travel as data, not as a ticket.
    _ = seccomp_violation:spawn_ticket({erlang, spawn, 4}),
    erlang:spawn(Node, ?MODULE, run, [layers(), M, F, A]).

%% @doc Runs on the other node (in the erpc process, or as the spawned
%% process's entry point): restrict, then apply through the checks.
-spec run([seccomp_policy:spec()], module(), atom(), [term()]) -> term().
run(Layers, M, F, A) ->
    [ok = restrict(Spec) || Spec <- Layers],
    seccomp_route:apply(M, F, A).

restrict(Spec) ->
    {ok, P} = seccomp_policy:new(Spec),
    seccomp_process:restrict_self(seccomp_policy:native(P)).

%% @private Enforcement point (see `seccomp_route').
-spec route(module(), atom(), [term()]) -> term().
route(rpc, F, [Node, M, Fn, A]) when F =:= call; F =:= block_call -> rpc_call(Node, M, Fn, A, infinity);
route(rpc, F, [Node, M, Fn, A, T]) when F =:= call; F =:= block_call -> rpc_call(Node, M, Fn, A, T);
route(rpc, cast, [Node, M, F, A]) -> ok = cast(Node, M, F, A), true;
route(erpc, call, [Node, M, F, A]) -> call(Node, M, F, A, infinity);
route(erpc, call, [Node, M, F, A, T]) -> call(Node, M, F, A, T);
route(erpc, cast, [Node, M, F, A]) -> cast(Node, M, F, A);
route(erlang, F, Args) ->
    case remote_node(F, Args) of
        local -> erlang:apply(erlang, F, Args);
        Node -> remote_spawn(erlang, F, Node, Args)
    end;
route('Elixir.Node', F, [Node | _] = Args) when F =:= spawn; F =:= spawn_link;
                                               F =:= spawn_monitor; F =:= spawn_opt ->
    remote_spawn('Elixir.Node', F, Node, Args);
route(Mod, F, Args) when Mod =:= rpc; Mod =:= erpc ->
    free_only(Mod, F, Args);
route(Mod, F, Args) ->
    erlang:apply(Mod, F, Args).

%% A spawn on another node: `spawn/2,4' is carried, the rest refused for a
%% restricted caller. On this node the tracer restricts the child.
remote_spawn(Mod, F, Node, Args) ->
    case Node =:= node() orelse not seccomp_nif:is_restricted(self()) of
        true -> erlang:apply(Mod, F, Args);
        false -> carried_spawn(Mod, F, Node, Args)
    end.

carried_spawn(_Mod, spawn, Node, [Node, Fun]) ->
    is_function(Fun, 0) orelse erlang:error({badarg, {Node, Fun}}),
    spawn(Node, erlang, apply, [Fun, []]);
carried_spawn(_Mod, spawn, Node, [Node, M, F, A]) -> spawn(Node, M, F, A);
carried_spawn(Mod, F, _Node, Args) -> free_only(Mod, F, Args).

%% The node a spawn BIF is asked to start on, `local' for its local forms
%% (`spawn_request' has both forms at arities 2, 3 and 4).
remote_node(spawn_request, [Node, Fun]) when is_atom(Node), is_function(Fun) -> Node;
remote_node(spawn_request, [Node, Fun, _Opts]) when is_atom(Node), is_function(Fun) -> Node;
remote_node(spawn_request, [Node, _M, F, _A]) when is_atom(Node), is_atom(F) -> Node;
remote_node(spawn_request, [Node, _M, _F, _A, _Opts]) -> Node;
remote_node(spawn_request, _Args) -> local;
remote_node(_F, [Node | _]) -> Node.

free_only(Mod, F, Args) ->
    case seccomp_nif:is_restricted(self()) of
        false -> erlang:apply(Mod, F, Args);
        true -> seccomp_violation:refuse({Mod, F, length(Args)})
    end.

%% The remote call is a capability of its own, and so is its target.
allowed(Door, M, F, A) when is_atom(M), is_atom(F), is_list(A) ->
    ok = seccomp_route:check(Door),
    ok = seccomp_route:check({M, F, length(A)});
allowed(_Door, M, F, A) ->
    erlang:error({badarg, {M, F, A}}).

%% The caller's inheritable layers, as policy maps (they travel as data).
layers() ->
    case seccomp_process:status(self()) of
        #{layers := Layers} -> [L || #{inherit := true} = L <- Layers];
        _ -> []
    end.
