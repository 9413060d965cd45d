%% @doc Library functions that read or write an ETS table their own code
%% names: `global:registered_names/0' lists `global_names', `pg:which_groups/0'
%% reads its scope's table, `timer' and `disk_log' keep theirs. Such tables
%% are the host's (the sandbox did not create them), but the handler's check
%% of `ets' calls does not see these: compiled code makes them. Found in the
%% debug information of the analysed code (`seccomp_callgraph'): a call of an
%% `ets' function whose table argument is a literal atom. Once per VM.
-module(seccomp_host_tables).

-export([users/0]).

-define(KEY, {?MODULE, users}).
%% `ets' functions whose literal first argument is no table of the host's:
%% a new table's name, a lookup of where a name is, match specifications.
-define(NO_TABLE, [new, whereis, match_spec_compile, match_spec_run, test_ms, is_compiled_ms]).
%% Elixir's settings, read by data functions (`URI.default_port/1'); what
%% they hold of the host (`System.argv/0') is reached through `System', a
%% capability module.
-define(SETTINGS, [elixir_config]).

%% @doc The functions of the analysed code that name a table in a call of
%% `ets'.
-spec users() -> [mfa()].
users() ->
    case persistent_term:get(?KEY, undefined) of
        undefined ->
            Users = case seccomp_callgraph:graph() of
                        error -> [];
                        #{callers := Callers} -> derive(Callers)
                    end,
            persistent_term:put(?KEY, Users),
            Users;
        Users ->
            Users
    end.

derive(Callers) ->
    EtsCallers = lists:usort(lists:append([Cs || {{ets, F, _}, Cs} <- maps:to_list(Callers),
                                                 not lists:member(F, ?NO_TABLE)])),
    Modules = lists:usort([M || {M, _, _} <- EtsCallers]),
    Candidates = maps:from_keys(EtsCallers, true),
    [{M, F, A} || M <- Modules, {function, _, F, A, Clauses} <- seccomp_callgraph:module_forms(M),
                  is_map_key({M, F, A}, Candidates), names_table(Clauses)].

%% Whether the abstract code calls `ets:F(Table, ...)' with a literal atom.
names_table({call, _, {remote, _, {atom, _, ets}, {atom, _, F}}, [{atom, _, Table} | _]} = Call) ->
    not lists:member(F, ?NO_TABLE) andalso not lists:member(Table, ?SETTINGS)
        orelse names_table(tuple_to_list(Call));
names_table(T) when is_tuple(T) ->
    names_table(tuple_to_list(T));
names_table(L) when is_list(L) ->
    lists:any(fun names_table/1, L);
names_table(_) ->
    false.
