%% @doc The host's state that sandboxed code may not read or change, whatever
%% the policy (a denylist that does not name these leaves them to the
%% handler): ETS tables the sandbox does not own, `persistent_term', the
%% applications and their environment, and what the VM's introspection
%% built-ins tell or its console shows (`seccomp_introspection').
%% The sandbox's own ETS tables (created by a member, owned by a member)
%% stay usable; a caller-mode run owns none (a table it made would belong
%% to the caller and outlive the run).
-module(seccomp_sandbox_state).

-export([allowed/3, within/3, module/1, forget/1, tables_made/1, always_refused/3]).

%% Tables one run may create, each within the copy bound.
-define(MAX_TABLES, 16).
-define(TABLES, '$ets_tables').

%% ETS functions that touch no table.
-define(ETS_PURE, [match_spec_compile, match_spec_run, test_ms, is_compiled_ms]).
%% ETS functions that do not grow a table: every other call on one of the
%% sandbox's tables is a write, refused once the table holds the copy bound.
-define(ETS_SHRINKING_OR_READING,
        [lookup, lookup_element, member, info, select, select_count, select_reverse, match,
         match_object, first, last, next, prev, tab2list, foldl, foldr, whereis, slot,
         delete, delete_object, delete_all_objects, match_delete, select_delete, take,
         safe_fixtable, rename]).

%% @doc Whether calls into `M' are judged here (such calls are never direct).
%% The runtime's own preloaded modules are judged here too: but for
%% `erlang' and the few a sandbox may use, they are its internals (`prim_eval'
%% reads the calling process's mailbox, `prim_buffer' keeps data off every
%% heap, `erts_internal'...), refused whatever the policy.
-spec module(module()) -> boolean().
module(M) ->
    lists:member(M, [ets, persistent_term, application, 'Elixir.Application', zlib])
        orelse runtime_internal(M).

runtime_internal(M) ->
    not lists:member(M, [erlang, atomics, counters, zlib, persistent_term])
        andalso lists:member(M, preloaded()).

preloaded() ->
    Key = {?MODULE, preloaded},
    case persistent_term:get(Key, undefined) of
        undefined -> Mods = erlang:pre_loaded(), persistent_term:put(Key, Mods), Mods;
        Mods -> Mods
    end.

%% @doc Whether `M:F/A' is refused whatever the policy: a library function
%% that can reach state the whole VM shares (writes `persistent_term', reads
%% or writes the application environment, configures logger or writes to
%% the VM's console) or that decompresses (its output has no bound its input
%% sets), see `seccomp_reach'. Waits until the sets are known (sandboxes
%% wait for them before they start).
-spec always_refused(module(), atom(), arity()) -> boolean().
always_refused(M, F, A) ->
    lists:any(fun(G) -> refused(G, M, F, A) end, seccomp_reach:refused_groups()).

refused(Group, M, F, A) ->
    case seccomp_reach:status(Group, M, F, A) of
        unknown ->
            seccomp_reach:ensure(),
            seccomp_reach:status(Group, M, F, A) =/= false;
        Known ->
            Known
    end.

%% @doc Whether sandboxed code may make this call. `Own' tells whether a
%% process is one of the sandbox's, or is `none' in caller mode.
-spec allowed({module(), atom()}, list(), fun((pid()) -> boolean()) | none) -> boolean().
allowed({M, register}, _Args, _Own) when M =:= erlang; M =:= 'Elixir.Process' ->
    %% Names are the VM's: a name the host has not taken yet (a server it
    %% starts on demand) would bring the host's requests to the sandbox.
    false;
allowed({M, group_leader}, [Leader, Pid], Own) when M =:= erlang; M =:= 'Elixir.Process' ->
    %% Both processes the sandbox's own: another's group leader is where its
    %% output goes, and a host process as the leader gets the sandbox's.
    Own =/= none andalso Own(Leader) andalso Own(Pid);
allowed({erlang, garbage_collect}, [Pid | _], Own) ->
    Own =/= none andalso Own(Pid);
allowed({erlang, F}, Args, _Own) ->
    seccomp_introspection:allowed(F, Args);
allowed({ets, new}, [_Name, Opts], Own) ->
    %% A named table takes a name of the VM's too, and an heir would keep
    %% the table (and hand it to a host process) when the sandbox ends.
    Own =/= none andalso is_list(Opts)
        andalso not lists:any(fun(O) -> O =:= named_table orelse is_tuple(O) andalso element(1, O) =:= heir end, Opts);
allowed({ets, new}, _Args, Own) ->
    Own =/= none;
allowed({ets, F}, [_Continuation], _Own) when F =:= select; F =:= select_reverse; F =:= match;
                                               F =:= match_object ->
    %% A continuation names a table this check does not see.
    false;
allowed({ets, F}, _Args, _Own) when F =:= all; F =:= i; F =:= give_away; F =:= setopts;
                                    F =:= repair_continuation; F =:= tab2file; F =:= file2tab;
                                    F =:= tabfile_info ->
    %% Every table, another owner or heir, or a file.
    false;
allowed({ets, F}, _Args, _Own) when F =:= select_replace; F =:= init_table; F =:= from_dets ->
    %% One call writes what its arguments do not bound: objects rebuilt
    %% unshared from a match specification's body (the table multiplied by
    %% its fan-out), or as many as a fun or a file yields.
    false;
allowed({ets, F}, [Tab | _], Own) ->
    lists:member(F, ?ETS_PURE) orelse own_table(Tab, Own);
allowed({ets, F}, [], _Own) ->
    lists:member(F, ?ETS_PURE);
allowed({zlib, F}, _Args, _Own) ->
    %% One call that compresses, or a checksum: a stream (`open') keeps
    %% hundreds of kilobytes of the runtime's memory per handle.
    lists:member(F, [compress, zip, gzip, crc32, crc32_combine, adler32, adler32_combine]);
allowed({M, _F}, _Args, _Own) ->
    not module(M).

%% @doc Whether a write into one of the sandbox's tables keeps the table
%% within `Max' bytes, and a new table the sandbox's count (`Counters': its
%% member table) within ?MAX_TABLES: their memory is outside every heap
%% limit.
-spec within({module(), atom()}, list(), {ets:tid() | caller, non_neg_integer()}) -> boolean().
within({ets, new}, _Args, {Counters, _Max}) when Counters =/= caller ->
    ets:update_counter(Counters, ?TABLES, 1, {?TABLES, 0}) =< ?MAX_TABLES;
within({ets, F}, [Tab | _], {_Counters, Max}) when is_atom(Tab); is_reference(Tab) ->
    lists:member(F, ?ETS_SHRINKING_OR_READING) orelse lists:member(F, ?ETS_PURE)
        orelse case ets:info(Tab, memory) of
                   Words when is_integer(Words) -> Words * erlang:system_info(wordsize) =< Max;
                   undefined -> true
               end;
within(_Call, _Args, _Max) ->
    true.

%% @doc How many tables the run created.
-spec tables_made(ets:tid()) -> non_neg_integer().
tables_made(Counters) ->
    case ets:lookup(Counters, ?TABLES) of
        [{_, N}] -> N;
        [] -> 0
    end.

%% @doc Forget the tables a run created (a warm process's next run).
-spec forget(ets:tid()) -> ok.
forget(Counters) ->
    ets:delete(Counters, ?TABLES),
    ok.

own_table(_Tab, none) ->
    false;
own_table(Tab, Own) when is_atom(Tab); is_reference(Tab) ->
    case ets:info(Tab, owner) of
        undefined -> true; % no such table: ets raises badarg
        Owner -> Own(Owner)
    end;
own_table(_Tab, _Own) ->
    true.
