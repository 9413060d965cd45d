%% @doc Violation events: every denial is logged and sent to subscribers as
%% `{seccomp_event, Event}'. Subscribers are monitored and dropped when they die.
-module(seccomp_events).
-behaviour(gen_server).

-export([start_link/0, subscribe/1, unsubscribe/1, notify/1]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2]).

-export_type([event/0]).

-type event() :: #{pid := pid(), mfa := mfa(), action := seccomp_policy:action(),
                   outcome := denied | allowed | killed, node := node(),
                   time := integer()}.

-spec start_link() -> {ok, pid()}.
start_link() -> gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).

-spec subscribe(pid()) -> ok | {error, not_started}.
subscribe(Pid) -> call({subscribe, Pid}).

-spec unsubscribe(pid()) -> ok | {error, not_started}.
unsubscribe(Pid) -> call({unsubscribe, Pid}).

call(Msg) ->
    try gen_server:call(?MODULE, Msg)
    catch exit:{noproc, _} -> {error, not_started}
    end.

%% @doc Record a violation: a log report now, subscribers asynchronously.
-spec notify(event()) -> ok.
notify(#{pid := Pid, mfa := {M, F, A}, action := Action, outcome := Outcome} = Event) ->
    logger:warning(#{what => seccomp_violation, pid => Pid, mfa => {M, F, A},
                     action => Action, outcome => Outcome},
                   #{report_cb => fun report/1, domain => [beam_seccomp]}),
    gen_server:cast(?MODULE, {event, Event}).

report(#{pid := Pid, mfa := MFA, action := Action, outcome := Outcome}) ->
    {"seccomp violation: ~p called ~ts, action ~p, ~p", [Pid, mfa_text(MFA), Action, Outcome]}.

%% Elixir modules' functions read as Elixir writes them (`File.read!/1').
mfa_text({M, F, A}) ->
    case atom_to_binary(M) of
        <<"Elixir.", _/binary>> when is_atom(F), is_integer(A) ->
            'Elixir.Exception':format_mfa(M, F, A);
        _ ->
            io_lib:format("~tw:~tw/~w", [M, F, A])
    end.

init([]) -> {ok, #{}}.

handle_call({subscribe, Pid}, _From, Subs) ->
    case Subs of
        #{Pid := _} -> {reply, ok, Subs};
        _ -> {reply, ok, Subs#{Pid => monitor(process, Pid)}}
    end;
handle_call({unsubscribe, Pid}, _From, Subs) ->
    case maps:take(Pid, Subs) of
        {Ref, Rest} -> demonitor(Ref, [flush]), {reply, ok, Rest};
        error -> {reply, ok, Subs}
    end.

handle_cast({event, Event}, Subs) ->
    maps:foreach(fun(Pid, _) -> Pid ! {seccomp_event, Event} end, Subs),
    {noreply, Subs}.

handle_info({seccomp_watch, Pid}, Subs) ->
    %% See seccomp:inherit_everywhere/1: a child restricted by the tracer.
    ok = seccomp_nif:watch_pid(Pid),
    {noreply, Subs};
handle_info({'DOWN', _Ref, process, Pid, _}, Subs) ->
    {noreply, maps:remove(Pid, Subs)};
handle_info(_Other, Subs) ->
    {noreply, Subs}.
