%% @doc The context of a sandbox and the state of its current run.
%%
%% A context ({@link new/1}, {@link open/3}) names the member table, the
%% keeper, the ticket of layers and the limits; a caller context
%% ({@link caller/2}) serves prepared code run in the caller's own process,
%% checked against the prepared policy on top of the caller's layers. The
%% state of a run (atoms spent, the first violation, how many were
%% reported) lives in the member table, or for a caller-mode run in the
%% caller's dictionary.
-module(seccomp_sandbox_ctx).

-include("seccomp_sandbox.hrl").

-export([open/3, new/1, caller/2, id/1, copyable/2, bounded_result/2, limit/2, memory_limit/1]).
-export([spend_atoms/2, atoms_made/2, atoms_left/1, violation/1, record_violation/2, reported/1, clear_run/1,
         begin_caller_run/1, end_caller_run/1, in_run/1]).

-export_type([ctx/0]).

-type ctx() :: #ctx{}.

%% A caller-mode run's state in the caller's dictionary: {Violation, Atoms}.
-define(CALLER_RUN, '$seccomp_caller_run').
-define(CALLER_REPORTS, '$seccomp_caller_reports').
%% How many copy bounds a caller-mode run's heap may grow by (garbage and
%% the collector's copies included).
-define(CALLER_HEAP_FACTOR, 4).
%% Violations of one run that are logged and sent to subscribers.
-define(MAX_REPORTS, 100).

%% @doc Restrict the calling process (a sandbox's keeper) with the caller's
%% ticket and `Policy', and open a sandbox whose members carry both.
-spec open(reference() | none, seccomp_policy:t() | reference(), map()) -> ctx().
open(CallerTicket, Policy, Opts) ->
    CallerTicket =:= none orelse seccomp_nif:adopt(CallerTicket),
    ok = seccomp_nif:restrict_self(seccomp_policy:native(Policy)),
    {_, Ticket} = seccomp_nif:spawn_ticket(),
    new(Opts#{ticket => Ticket}).

%% @doc A sandbox context. `Opts' carries the limits and the ticket of layers.
-spec new(map()) -> ctx().
new(#{keeper := Keeper, ticket := Ticket, max_processes := MaxProcs, max_heap_size := Heap,
      max_binary := Bin, max_atoms := Atoms, send_to := SendTo} = Opts) ->
    Tab = ets:new(seccomp_sandbox, [public, set]),
    ets:insert(Tab, [{'$count', 0}, {'$atoms', 0}]),
    #ctx{id = make_ref(), tab = Tab, keeper = Keeper, ticket = Ticket, policy = none,
         max_processes = MaxProcs, max_heap_size = Heap, max_binary = Bin, max_atoms = Atoms,
         max_copy = max_copy(Heap, Bin), send_to = SendTo, denylist = denylist(Opts)}.

%% A term no larger than one member's heap and the binary limit, unshared.
max_copy(Heap, Bin) -> 8 * Heap + Bin.

%% @doc A context for running prepared code in the caller's own process,
%% checked against `Policy' (a native policy) on top of the caller's layers.
-spec caller(reference(), map()) -> ctx().
caller(Policy, #{max_heap_size := Heap, max_binary := Bin, max_atoms := Atoms, send_to := SendTo} = Opts) ->
    #ctx{id = make_ref(), tab = caller, keeper = none, ticket = none, policy = Policy,
         max_processes = 0, max_heap_size = 0, max_binary = Bin, max_atoms = Atoms,
         max_copy = max_copy(Heap, Bin), send_to = SendTo, denylist = denylist(Opts)}.

denylist(#{policy := P}) ->
    seccomp_policy:is_policy(P) andalso maps:get(mode, seccomp_policy:spec(P), whitelist) =:= blacklist;
denylist(_Opts) ->
    false.

-spec id(ctx()) -> reference().
id(#ctx{id = Id}) -> Id.

%% @doc Whether a term from sandboxed code may leave it (be copied to another
%% process, or walked by one uninterruptible call): its flattened cost,
%% shared subterms counted each time, is within the sandbox's bound.
-spec copyable(term(), ctx()) -> boolean().
copyable(Term, #ctx{max_copy = Max}) -> seccomp_size:within(Term, Max, term).

%% @doc A run's result as it may leave the sandbox: unchanged, or
%% `{error, memory_limit}' when its value, bindings or exception would
%% flatten beyond the bound.
-spec bounded_result(Result, ctx()) -> Result | {error, memory_limit}.
bounded_result({error, Reason} = E, _Ctx) when is_atom(Reason) -> E;
bounded_result(Result, Ctx) ->
    case copyable(Result, Ctx) of
        true -> Result;
        false -> {error, memory_limit}
    end.

%% @doc Fail the calling member with `Limit', and tell the keeper (which
%% ends the run).
-spec limit(atom(), ctx()) -> no_return().
limit(Limit, #ctx{keeper = none}) ->
    erlang:error(Limit);
limit(Limit, #ctx{keeper = Keeper, id = Id}) ->
    Keeper ! {seccomp_limit, Id, Limit, self()},
    erlang:error(Limit).

-spec memory_limit(ctx()) -> no_return().
memory_limit(Ctx) -> limit(memory_limit, Ctx).

%%% The run's state ----------------------------------------------------------------

%% @doc Count atoms the source itself created against `max_atoms'.
-spec spend_atoms(ctx(), non_neg_integer()) -> ok.
spend_atoms(#ctx{tab = Tab}, N) ->
    _ = ets:update_counter(Tab, '$atoms', N),
    ok.

%% @doc Count `K' atoms a call makes (or made): past `max_atoms', or past
%% what all sandboxes together may make (`seccomp_atom_reserve'), the run
%% ends with `atom_limit'.
-spec atoms_made(integer(), ctx()) -> ok.
atoms_made(K, _Ctx) when K =< 0 ->
    ok;
atoms_made(K, #ctx{tab = caller, max_atoms = Max} = Ctx) ->
    case get(?CALLER_RUN) of
        {Violation, N} when N + K =< Max -> put(?CALLER_RUN, {Violation, N + K}), reserve(K, Ctx);
        _ -> limit(atom_limit, Ctx)
    end;
atoms_made(K, #ctx{tab = Tab, max_atoms = Max} = Ctx) ->
    case ets:update_counter(Tab, '$atoms', K) of
        N when N > Max -> limit(atom_limit, Ctx);
        _ -> reserve(K, Ctx)
    end.

reserve(K, Ctx) ->
    case seccomp_atom_reserve:take(K) of
        ok -> ok;
        atom_limit -> limit(atom_limit, Ctx)
    end.

%% @doc How many atoms the run may still make: within `max_atoms' and what
%% all sandboxes may still make.
-spec atoms_left(ctx()) -> non_neg_integer().
atoms_left(#ctx{tab = caller, max_atoms = Max}) ->
    case get(?CALLER_RUN) of
        {_Violation, N} -> max(0, min(Max - N, seccomp_atom_reserve:left()));
        undefined -> 0
    end;
atoms_left(#ctx{tab = Tab, max_atoms = Max}) ->
    case ets:lookup(Tab, '$atoms') of
        [{_, N}] -> max(0, min(Max - N, seccomp_atom_reserve:left()));
        [] -> 0
    end.

%% @doc Start a caller-mode run in the calling process. The caller's own
%% dictionary leaves the run's sight (library code keeps state there: the
%% `rand' seed, a logger's metadata) and comes back with
%% {@link end_caller_run/1}: the run neither reads nor changes it. While
%% the run lasts, the caller's heap may grow by ?CALLER_HEAP_FACTOR times
%% the copy bound at most (a value within the bound ends the run with it or
%% with `memory_limit'; an allocation no bound sees, `Enum.to_list' of a
%% huge range, meets this): past that the VM kills the caller, which is
%% better than the VM failing to allocate. So are the binaries it references
%% (`seccomp_caller_binaries').
-spec begin_caller_run(ctx()) -> {[{term(), term()}], seccomp_caller_binaries:run()}.
begin_caller_run(#ctx{max_copy = Copy, max_binary = Bin}) ->
    Caller = erase(),
    Run = seccomp_caller_binaries:begin_run(?CALLER_HEAP_FACTOR * Copy div erlang:system_info(wordsize), Bin),
    put(?CALLER_RUN, {none, 0}),
    {Caller, Run}.

%% @doc End a caller-mode run: drop what it left in the dictionary, give
%% the caller its own dictionary and heap limit back, and return the first
%% violation, or `none'.
-spec end_caller_run({[{term(), term()}], seccomp_caller_binaries:run()}) -> none | mfa().
end_caller_run({Caller, Limit}) ->
    ok = seccomp_caller_binaries:end_run(Limit),
    Run = erase(),
    _ = [put(K, V) || {K, V} <- Caller],
    case lists:keyfind(?CALLER_RUN, 1, Run) of
        {_, {Violation, _Atoms}} -> Violation;
        false -> none
    end.

%% @doc Whether the calling process may run code of this context: a member
%% always (see `seccomp_sandbox_members'); with a caller context, only
%% between {@link begin_caller_run/1} and {@link end_caller_run/1}.
-spec in_run(ctx()) -> boolean().
in_run(#ctx{tab = caller}) -> get(?CALLER_RUN) =/= undefined;
in_run(_Ctx) -> true.

%% @doc The first violation any member caused since the last reset, or `none'.
-spec violation(ctx()) -> none | mfa().
violation(#ctx{tab = Tab}) ->
    try ets:lookup(Tab, '$violation') of
        [{_, MFA}] -> MFA;
        [] -> none
    catch
        error:badarg -> none
    end.

%% @doc Remember the run's first violation: it decides the run's result
%% even if the code catches it.
-spec record_violation(mfa(), ctx()) -> term().
record_violation(MFA, #ctx{tab = caller}) ->
    case get(?CALLER_RUN) of
        {none, Atoms} -> put(?CALLER_RUN, {MFA, Atoms});
        _ -> ok
    end;
record_violation(MFA, #ctx{tab = Tab}) ->
    try ets:insert_new(Tab, {'$violation', MFA}) catch error:badarg -> false end.

%% @doc Whether a violation is still logged and sent to subscribers: at most
%% ?MAX_REPORTS per run, so a loop of caught violations cannot flood the
%% host's log (the run's result still names the first one).
-spec reported(ctx()) -> boolean().
reported(#ctx{tab = caller}) ->
    N = case get(?CALLER_REPORTS) of undefined -> 0; K -> K end,
    put(?CALLER_REPORTS, N + 1),
    N < ?MAX_REPORTS;
reported(#ctx{tab = Tab}) ->
    try ets:update_counter(Tab, '$reports', 1, {'$reports', 0}) =< ?MAX_REPORTS
    catch error:badarg -> false
    end.

%% @doc Forget the run's atoms, violation and reports (a warm sandbox's next run).
-spec clear_run(ctx()) -> ok.
clear_run(#ctx{tab = Tab}) ->
    seccomp_opaque:forget(Tab),
    seccomp_offheap:forget(Tab),
    seccomp_sandbox_timers:forget(Tab),
    seccomp_sandbox_state:forget(Tab),
    ets:insert(Tab, {'$atoms', 0}),
    ets:delete(Tab, '$violation'),
    ets:delete(Tab, '$reports'),
    ok.
