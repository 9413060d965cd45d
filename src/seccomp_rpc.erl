%% @doc Remote calls that carry the caller's restrictions to the other node.
%%
%% A restricted process must not gain rights by asking another node to do the
%% work: the call is checked here (the remote call itself, then the target),
%% and runs there in a process restricted by the same layers. The other node
%% must run beam_seccomp; if it does not, the call fails (closed).
-module(seccomp_rpc).

-export([call/5, cast/4, spawn/4, run/4]).

%% @doc Like `erpc:call/5', under the caller's layers on both nodes.
-spec call(node(), module(), atom(), [term()], timeout()) -> term().
call(Node, M, F, A, Timeout) ->
    allowed({erpc, call, 5}, M, F, A),
    erpc:call(Node, ?MODULE, run, [layers(), M, F, A], Timeout).

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
    [ok = seccomp:restrict(Spec) || Spec <- Layers],
    seccomp:apply(M, F, A).

%% The remote call is a capability of its own, and so is its target.
allowed(Door, M, F, A) when is_atom(M), is_atom(F), is_list(A) ->
    check(Door),
    check({M, F, length(A)});
allowed(_Door, M, F, A) ->
    erlang:error({badarg, {M, F, A}}).

check(MFA) ->
    case seccomp:check(MFA) of
        allow -> ok;
        {deny, Action} -> seccomp_violation:handle(Action, MFA, fun() -> ok end)
    end.

%% The caller's inheritable layers, as policy maps (they travel as data).
layers() ->
    case seccomp:status(self()) of
        #{layers := Layers} -> [L || #{inherit := true} = L <- Layers];
        _ -> []
    end.
