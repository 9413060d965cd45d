%% @private
-module(beam_seccomp_sup).
-behaviour(supervisor).
-export([start_link/0, init/1]).

start_link() -> supervisor:start_link({local, ?MODULE}, ?MODULE, []).

init([]) ->
    LogKeeper = #{id => seccomp_log_keeper, start => {seccomp_log_keeper, start_link, []}},
    Events = #{id => seccomp_events, start => {seccomp_events, start_link, []}},
    Prepared = #{id => seccomp_prepared, start => {seccomp_prepared, start_link, []}},
    CallerWatch = #{id => seccomp_caller_watch, start => {seccomp_caller_watch, start_link, []}},
    %% The call graph and the sets derived from it, in the background when
    %% first needed: until a set is known, every call counts as a member.
    %% Spawners first: a `no_spawn' check waits for them.
    Sets = [seccomp_spawners:spec(), seccomp_flatteners:spec(), seccomp_opaque:spec() | seccomp_reach:specs()],
    Graph = #{id => seccomp_callgraph, start => {seccomp_callgraph, start_link, [Sets]},
              restart => temporary},
    {ok, {#{strategy => one_for_one, intensity => 10, period => 10}, [LogKeeper, Events, Prepared, CallerWatch, Graph]}}.
