%% @doc Timers set by sandboxed code. A timer keeps a copy of its message
%% outside every heap (the runtime's timer wheel, or the state of the `timer'
%% server) until it fires, which may be weeks after the run; a timer aimed at
%% a name, or one that applies a function, outlives every process of the
%% sandbox. So a sandbox's timers may be aimed only at its own processes (they
%% are cancelled when those end), their messages are charged to the run's
%% off-heap memory, and a pool run that set one ends its runner (the timer
%% would fire into the next run). The rest of the `timer' module's functions
%% that set or start something (`apply_*', `send_interval', `exit_after',
%% `kill_after', `start') are refused: they keep their timers in the VM's one
%% `timer_server', which every host process shares. Default deny: only the
%% forms named here are timers a sandbox may set.
-module(seccomp_sandbox_timers).

-export([timer/3, allowed/4, message/3, set/1, any_set/1, forget/1]).

-define(KEY, '$seccomp_timer').

%% Functions of `timer' that set nothing and address no process.
-define(TIMER_INERT, [cancel, sleep, tc, now_diff, seconds, minutes, hours, hms]).

%% @doc Whether `M:F/A' sets a timer or is one of `timer''s other functions
%% (both judged here: a call of one is never direct).
-spec timer(module(), atom(), arity()) -> boolean().
timer(erlang, F, A) -> (F =:= send_after orelse F =:= start_timer) andalso (A =:= 3 orelse A =:= 4);
timer('Elixir.Process', send_after, A) -> A =:= 3 orelse A =:= 4;
timer(timer, F, _A) -> not lists:member(F, ?TIMER_INERT);
timer(_M, _F, _A) -> false.

%% @doc Whether sandboxed code may make the timer call `M:F(Args...)':
%% its destination is one of the sandbox's processes (`Own'; `none' in
%% caller mode, whose process is the caller's own: no timer at all).
-spec allowed(module(), atom(), list(), fun((term()) -> boolean()) | none) -> boolean().
allowed(_M, _F, _Args, none) ->
    false;
allowed(M, F, Args, Own) ->
    case destination(M, F, Args) of
        {ok, Dest} -> is_pid(Dest) andalso Own(Dest);
        none -> false
    end.

%% @doc Note in the run's table that it set a timer.
-spec set(ets:tid()) -> true.
set(Tab) -> ets:insert(Tab, {?KEY, true}).

%% @doc Whether the run set a timer.
-spec any_set(ets:tid()) -> boolean().
any_set(Tab) -> ets:member(Tab, ?KEY).

%% @doc Forget it (the next run).
-spec forget(ets:tid()) -> ok.
forget(Tab) ->
    ets:delete(Tab, ?KEY),
    ok.

%% @doc What the timer call `M:F(Args...)' keeps until it fires.
-spec message(module(), atom(), list()) -> term().
message(erlang, _F, [_Time, _Dest, Msg | _]) -> Msg;
message('Elixir.Process', send_after, [_Dest, Msg | _]) -> Msg;
message(timer, send_after, [_Time, Msg]) -> Msg;
message(timer, send_after, [_Time, _Dest, Msg]) -> Msg;
message(_M, _F, _Args) -> [].

destination(erlang, _F, [_Time, Dest | _]) -> {ok, Dest};
destination('Elixir.Process', send_after, [Dest | _]) -> {ok, Dest};
%% (`timer:send_after/2,3' sets a runtime timer for a local pid.)
destination(timer, send_after, [_Time, _Msg]) -> {ok, self()};
destination(timer, send_after, [_Time, Dest, _Msg]) -> {ok, Dest};
destination(_M, _F, _Args) -> none.
