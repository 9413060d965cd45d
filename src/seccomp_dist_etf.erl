%% @doc Reads the external term format of distribution terms without
%% decoding them: where a term ends, which atoms it would create, whether it
%% holds funs, how much memory decoding it would take.
%%
%% The walk is native (`seccomp_nif', `etf.rs'): terms are walked in prefix
%% order with a count of terms still to read, so nesting depth costs
%% nothing, and binaries are skipped, not copied. Tags that a connection
%% without the atom cache never carries (atom cache references, compressed
%% terms, `LOCAL_EXT') and unknown tags are errors. A walk longer than a
%% short NIF call goes on on a dirty scheduler.
-module(seccomp_dist_etf).

-export([scan/2]).
-export_type([info/0]).

-type info() :: #{size := non_neg_integer(), new_atoms := [binary()], funs := non_neg_integer(),
                  memory := non_neg_integer()}.

%% @doc Scan the term at the start of `Bin' (with its version byte). At most
%% `MaxNewAtoms' distinct atoms unknown to this node are allowed; more is
%% `{error, atom_budget}'.
-spec scan(binary(), non_neg_integer()) -> {ok, info()} | {error, term()}.
scan(Bin, MaxNewAtoms) ->
    Scanned = case seccomp_nif:etf_scan(Bin, MaxNewAtoms) of
                  dirty -> seccomp_nif:etf_scan_dirty(Bin, MaxNewAtoms);
                  Done -> Done
              end,
    case Scanned of
        {ok, Size, New, Unchecked, Funs, Memory} ->
            %% Names the native walk could not look up (outside Latin-1).
            case New ++ [Name || Name <- Unchecked, not existing_atom(Name)] of
                All when length(All) > MaxNewAtoms -> {error, atom_budget};
                All -> {ok, #{size => Size, new_atoms => All, funs => Funs, memory => Memory}}
            end;
        {error, _} = Error ->
            Error
    end.

existing_atom(Name) ->
    try binary_to_existing_atom(Name, utf8) of
        _ -> true
    catch
        error:badarg -> false
    end.
