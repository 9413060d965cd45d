%% @private
-module(beam_seccomp_app).
-behaviour(application).
-export([start/2, stop/1]).

start(_Type, _Args) -> beam_seccomp_sup:start_link().

stop(_State) -> ok.
