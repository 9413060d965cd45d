%% @doc Keeps `seccomp_log_filter' the first primary logger filter. A host
%% (or Elixir's Logger starting after this library) may add a primary
%% filter at any time, and the newest runs first: this process looks every
%% ?INTERVAL ms and moves the filter back to the front. Sandboxes also
%% check when they start (`seccomp_eval', `seccomp_pool').
-module(seccomp_log_keeper).
-behaviour(gen_server).

-export([start_link/0]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2]).

%% Milliseconds between two looks (a lookup in logger's table each).
-define(INTERVAL, 50).

-spec start_link() -> {ok, pid()}.
start_link() -> gen_server:start_link(?MODULE, [], []).

%% @private
init([]) -> {ok, schedule()}.

%% @private
handle_call(_Request, _From, State) -> {reply, {error, unknown_request}, State}.

%% @private
handle_cast(_Request, State) -> {noreply, State}.

%% @private
handle_info({timeout, Ref, check}, Ref) ->
    ok = seccomp_log_filter:install(),
    {noreply, schedule()};
handle_info(_Other, State) ->
    {noreply, State}.

schedule() -> erlang:start_timer(?INTERVAL, self(), check).
