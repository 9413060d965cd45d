%% @doc The VM's atom table as sandboxes may use it. Atoms are never
%% collected, so every atom a sandbox makes stays: however many evaluations
%% and runs make them, together they may fill the table to three quarters,
%% and past that any new atom is refused (`atom_limit'). The rest is the
%% host's.
-module(seccomp_atom_table).

-export([room/0]).

%% @doc How many more atoms sandboxed code may make now.
-spec room() -> non_neg_integer().
room() ->
    max(0, erlang:system_info(atom_limit) div 4 * 3 - erlang:system_info(atom_count)).
