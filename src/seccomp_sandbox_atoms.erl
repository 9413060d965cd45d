%% @doc Atoms made by calls from sandboxed code count against `max_atoms':
%% the atom table is never garbage collected, and a full one ends the VM.
-module(seccomp_sandbox_atoms).

-export([new_atom/4, counting_atoms/4]).

%% @doc A call that makes one atom of its first argument: counted unless
%% the atom exists already, and refused when the table has no room for
%% sandboxes (`seccomp_atom_table').
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
            seccomp_atom_table:room() > 0 orelse seccomp_sandbox_ctx:limit(atom_limit, Ctx),
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
%% the atoms the VM gains during a call count against `max_atoms', and the
%% arguments must be too small to take the atom table past its share for
%% sandboxes (a scanner's: to exceed what is left of `max_atoms') even if
%% every byte became an atom. Once known, the other atom makers are refused
%% (`seccomp_profiles:kind/3').
-spec counting_atoms(module(), atom(), list(), seccomp_sandbox_ctx:ctx()) -> term().
counting_atoms(M, F, Args, Ctx) ->
    Scanner = seccomp_reach:scans_atoms(M),
    case Scanner orelse seccomp_reach:status(atoms, M, F, length(Args)) of
        Counted when Counted =:= true; Counted =:= unknown ->
            Before = erlang:system_info(atom_count),
            Room = case Scanner of
                       true -> min(seccomp_atom_table:room(), seccomp_sandbox_ctx:atoms_left(Ctx));
                       false -> seccomp_atom_table:room()
                   end,
            seccomp_size:within(Args, Room, iodata) orelse seccomp_sandbox_ctx:limit(atom_limit, Ctx),
            try
                erlang:apply(M, F, Args)
            after
                seccomp_sandbox_ctx:atoms_made(erlang:system_info(atom_count) - Before, Ctx)
            end;
        _ ->
            erlang:apply(M, F, Args)
    end.
