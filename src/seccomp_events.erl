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

-spec subscribe(pid()) -> ok | {error, not_started | not_permitted}.
subscribe(Pid) -> call({subscribe, Pid}).

-spec unsubscribe(pid()) -> ok | {error, not_started}.
unsubscribe(Pid) -> call({unsubscribe, Pid}).

call(Msg) ->
    case seccomp_library:server(?MODULE) of
        undefined -> {error, not_started};
        Pid ->
            try gen_server:call(Pid, Msg)
            catch exit:{noproc, _} -> {error, not_started}
            end
    end.

%% @doc Record a violation: a log report now, subscribers asynchronously.
-spec notify(event()) -> ok.
notify(#{pid := Pid, mfa := {M, F, A}, action := Action, outcome := Outcome} = Event) ->
    logger:warning(#{what => seccomp_violation, pid => Pid, mfa => {M, F, A},
                     action => Action, outcome => Outcome},
                   #{report_cb => fun report/1, domain => [beam_seccomp]}),
    %% Only to this library's own server: a process that took the name gets nothing.
    case seccomp_library:server(?MODULE) of
        undefined -> ok;
        Server -> gen_server:cast(Server, {event, Event})
    end.

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

init([]) ->
    %% Entries the tracer made while this server was down are watched now.
    ok = seccomp_nif:watch_pending(),
    {ok, #{}}.

%% Only unrestricted processes may watch violations (events name other
%% processes and their calls); anything else gets an error, never a crash.
handle_call({subscribe, Pid}, {Caller, _}, Subs) when is_pid(Pid), node(Pid) =:= node() ->
    case may_watch(Caller) andalso may_watch(Pid) of
        false -> {reply, {error, not_permitted}, Subs};
        true when is_map_key(Pid, Subs) -> {reply, ok, Subs};
        true -> {reply, ok, Subs#{Pid => monitor(process, Pid)}}
    end;
handle_call({unsubscribe, Pid}, _From, Subs) when is_pid(Pid) ->
    case maps:take(Pid, Subs) of
        {Ref, Rest} -> demonitor(Ref, [flush]), {reply, ok, Rest};
        error -> {reply, ok, Subs}
    end;
handle_call(_Other, _From, Subs) ->
    {reply, {error, badarg}, Subs}.

may_watch(Pid) -> is_pid(Pid) andalso node(Pid) =:= node() andalso not seccomp_nif:is_restricted(Pid).

handle_cast({event, #{pid := _, mfa := _} = Event}, Subs) ->
    maps:foreach(fun(Pid, _) -> Pid ! {seccomp_event, Event} end, Subs),
    {noreply, Subs};
handle_cast(_Other, Subs) ->
    {noreply, Subs}.

handle_info(seccomp_watch, Subs) ->
    %% A child restricted by the tracer callback, which cannot monitor.
    ok = seccomp_nif:watch_pending(),
    {noreply, Subs};
handle_info({'DOWN', _Ref, process, Pid, _}, Subs) ->
    {noreply, maps:remove(Pid, Subs)};
handle_info(_Other, Subs) ->
    {noreply, Subs}.
