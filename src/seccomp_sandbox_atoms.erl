%% @doc Atoms made by calls from sandboxed code count against `max_atoms'
%% and what all sandboxes may make (`seccomp_atom_reserve'): the atom table
%% is never garbage collected, and a full one ends the VM.
-module(seccomp_sandbox_atoms).

-export([new_atom/4, counting_atoms/4]).

%% @doc A call that makes one atom of its first argument: counted unless
%% the atom exists already (against `max_atoms' and what all sandboxes may
%% make, which the table's room for sandboxes bounds too).
-spec new_atom(module(), atom(), list(), seccomp_sandbox_ctx:ctx()) -> atom().
new_atom(M, F, Args, Ctx) ->
    Text = case Args of
               [B | _] when is_binary(B) -> B;
               [L | _] when is_list(L) -> L;
               _ -> erlang:error(badarg, Args)
           end,
    Existing = try existing_atom(Text) catch error:badarg -> none end,
    case Existing of
        none ->
            seccomp_sandbox_ctx:atoms_made(1, Ctx),
            erlang:apply(M, F, Args);
        Atom ->
            Atom
    end.

existing_atom(B) when is_binary(B) -> binary_to_existing_atom(B, utf8);
existing_atom(L) -> list_to_existing_atom(L).

%% @doc Carry out `M:F(Args...)'. Until the functions that can make atoms
%% of data are known (they are derived at start, see `seccomp_reach'), and
%% for a scanner that makes atoms of its text (`seccomp_reach:scans_atoms/1'),
%% a call whose arguments are too small to exceed what the run may still
%% make even if every byte became an atom is carried out, and the atoms the
%% VM gains meanwhile count (up to that size: other processes make atoms
%% too, the derivation itself thousands); any other call of a scanner is
%% refused (`atom_limit'), any other call waits until the set is known. The
%% other known members are refused (`seccomp_profiles:kind/3').
-spec counting_atoms(module(), atom(), list(), seccomp_sandbox_ctx:ctx()) -> term().
counting_atoms(M, F, Args, Ctx) ->
    Scanner = seccomp_reach:scans_atoms(M),
    case Scanner orelse seccomp_reach:status(atoms, M, F, length(Args)) of
        Counted when Scanner; Counted =:= unknown ->
            Before = erlang:system_info(atom_count),
            Room = seccomp_sandbox_ctx:atoms_left(Ctx),
            case seccomp_size:within(Args, Room, iodata) of
                true ->
                    try
                        erlang:apply(M, F, Args)
                    after
                        seccomp_sandbox_ctx:atoms_made(min(Room, erlang:system_info(atom_count) - Before), Ctx)
                    end;
                false when Scanner ->
                    seccomp_sandbox_ctx:limit(atom_limit, Ctx);
                false ->
                    seccomp_reach:ensure(),
                    counting_atoms(M, F, Args, Ctx)
            end;
        true ->
            seccomp_sandbox_verdict:deny({M, F, length(Args)}, Ctx);
        false ->
            erlang:apply(M, F, Args)
    end.
