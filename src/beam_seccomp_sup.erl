%% @private
-module(beam_seccomp_sup).
-behaviour(supervisor).
-export([start_link/0, init/1]).

start_link() -> supervisor:start_link({local, ?MODULE}, ?MODULE, []).

init([]) ->
    LogKeeper = #{id => seccomp_log_keeper, start => {seccomp_log_keeper, start_link, []}},
    Events = #{id => seccomp_events, start => {seccomp_events, start_link, []}},
    Prepared = #{id => seccomp_prepared, start => {seccomp_prepared, start_link, []}},
    {ok, {#{strategy => one_for_one, intensity => 10, period => 10}, [LogKeeper, Events, Prepared]}}.
