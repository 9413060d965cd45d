%% @doc The atoms all sandboxes together may make, for the life of the VM.
%%
%% Atoms are never garbage collected: whatever a run makes stays after it
%% ends, and a per-run budget (`max_atoms') alone lets many runs fill the
%% table. Every atom a sandbox makes (its source's, and those its calls
%% make) is taken from this reserve before it is made: at most
%% `max_sandbox_atoms' (application environment; default a quarter of the
%% table that is free when the reserve is created), and never past the
%% table's share for sandboxes (`seccomp_atom_table'), whoever filled it. The count is one atomic
%% word, so concurrent runs and members cannot overshoot it.
-module(seccomp_atom_reserve).

-export([init/0, take/1, left/0, spent/0, cap/0]).

-define(KEY, {?MODULE, reserve}).

%% @doc Create the reserve, unless it exists (at application start, or by
%% the first sandbox that needs it).
-spec init() -> ok.
init() ->
    case persistent_term:get(?KEY, undefined) of
        undefined ->
            %% Two first users must not each create one: the loser's
            %% count would be lost.
            global:trans({?MODULE, self()},
                         fun() -> persistent_term:get(?KEY, undefined) =:= undefined andalso create(), ok end,
                         [node()], infinity);
        _ ->
            ok
    end.

create() ->
    Free = erlang:system_info(atom_limit) - erlang:system_info(atom_count),
    Cap = case application:get_env(beam_seccomp, max_sandbox_atoms) of
              {ok, N} when is_integer(N), N >= 0 -> N;
              _ -> max(0, Free div 4)
          end,
    persistent_term:put(?KEY, {atomics:new(1, [{signed, false}]), Cap}).

reserve() ->
    case persistent_term:get(?KEY, undefined) of
        undefined -> init(), persistent_term:get(?KEY);
        R -> R
    end.

%% @doc Take `N' atoms about to be made; `atom_limit' (nothing taken) if
%% the reserve or the atom table has no room for them.
-spec take(non_neg_integer()) -> ok | atom_limit.
take(0) ->
    ok;
take(N) when is_integer(N), N > 0 ->
    {Ref, Cap} = reserve(),
    take(Ref, Cap, N).

take(Ref, Cap, N) ->
    Spent = atomics:get(Ref, 1),
    case Spent + N =< Cap andalso N =< seccomp_atom_table:room() of
        false ->
            atom_limit;
        true ->
            case atomics:compare_exchange(Ref, 1, Spent, Spent + N) of
                ok -> ok;
                _Changed -> take(Ref, Cap, N)
            end
    end.

%% @doc How many atoms sandboxes may still make.
-spec left() -> non_neg_integer().
left() ->
    {Ref, Cap} = reserve(),
    max(0, min(Cap - atomics:get(Ref, 1), seccomp_atom_table:room())).

%% @doc How many atoms sandboxes have made (taken from the reserve).
-spec spent() -> non_neg_integer().
spent() ->
    {Ref, _Cap} = reserve(),
    atomics:get(Ref, 1).

%% @doc The reserve's size: how many atoms all sandboxes may make.
-spec cap() -> non_neg_integer().
cap() -> element(2, reserve()).
