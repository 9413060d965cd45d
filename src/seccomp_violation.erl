%% @doc What happens when a check says `{deny, Action}'.
-module(seccomp_violation).

-export([handle/3, refuse/1, spawn_ticket/1, ask_broker/3]).

%% @doc Carry out `Action' for a denied `MFA'. `Proceed' runs the call when the
%% action lets it through (`log', or a broker that answers `allow').
-spec handle(seccomp_policy:action(), mfa(), fun(() -> Result)) -> Result.
handle(log, MFA, Proceed) ->
    record(log, MFA, allowed),
    Proceed();
handle(error, MFA, _Proceed) ->
    refuse(MFA);
handle(kill, MFA, _Proceed) ->
    record(kill, MFA, killed),
    %% Untrappable, like SECCOMP_RET_KILL: the reason is in the event and the log.
    exit(self(), kill),
    receive after infinity -> ok end;
handle({trap, Broker} = Action, MFA, Proceed) ->
    case ask_broker(Broker, MFA, trap_timeout()) of
        allow ->
            record(Action, MFA, allowed),
            Proceed();
        deny ->
            record(Action, MFA, denied),
            erlang:error({seccomp_violation, MFA})
    end.

%% @doc Refuse a call outright (action `error').
-spec refuse(mfa()) -> no_return().
refuse(MFA) ->
    record(error, MFA, denied),
    erlang:error({seccomp_violation, MFA}).

%% @doc The caller's inheritable layers as a ticket for a process it starts
%% (`none' when it has none), after checking `no_spawn': a violation is
%% reported as `MFA' and handled by its action.
-spec spawn_ticket(mfa()) -> none | reference().
spawn_ticket(MFA) ->
    case seccomp_nif:spawn_ticket() of
        none -> none;
        {allow, T} -> T;
        {{deny, Action}, T} -> handle(Action, MFA, fun() -> T end)
    end.

%% @doc Ask a broker about a call: it gets `{seccomp_trap, Ref, Pid, MFA}' and
%% answers with {@link seccomp:trap_reply/3}. Silence, death or garbage is `deny'.
-spec ask_broker(pid() | atom(), mfa(), timeout()) -> allow | deny.
ask_broker(Broker, MFA, Timeout) ->
    case whereis_broker(Broker) of
        undefined ->
            deny;
        Pid ->
            Ref = monitor(process, Pid, [{alias, reply_demonitor}]),
            Pid ! {seccomp_trap, Ref, self(), MFA},
            receive
                {seccomp_trap_reply, Ref, Answer} ->
                    demonitor(Ref, [flush]),
                    case Answer of
                        allow -> allow;
                        _ -> deny
                    end;
                {'DOWN', Ref, process, _, _} ->
                    deny
            after Timeout ->
                demonitor(Ref, [flush]),
                deny
            end
    end.

whereis_broker(Pid) when is_pid(Pid) -> Pid;
whereis_broker(Name) when is_atom(Name) -> whereis(Name).

%% A setting that is not a timeout is ignored (the default holds), never a crash.
trap_timeout() ->
    case application:get_env(beam_seccomp, trap_timeout, 5000) of
        T when is_integer(T), T >= 0, T =< 4294967295 -> T;
        infinity -> infinity;
        _ -> 5000
    end.

record(Action, MFA, Outcome) ->
    seccomp_events:notify(#{pid => self(), mfa => MFA, action => Action, outcome => Outcome,
                            node => node(), time => erlang:system_time(microsecond)}).
