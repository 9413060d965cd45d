%% @private
-module(beam_seccomp_app).
-behaviour(application).
-export([start/2, stop/1]).

start(_Type, _Args) ->
    %% Before any sandbox runs: what sandboxed processes log must stay inert.
    ok = seccomp_log_filter:install(),
    %% Before any sandbox makes an atom: the atoms all of them may make.
    ok = seccomp_atom_reserve:init(),
    beam_seccomp_sup:start_link().

stop(_State) -> seccomp_log_filter:uninstall().
