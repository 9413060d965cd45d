%% @doc What a term costs the VM when it is copied, compared, hashed or
%% flattened, counting shared subterms every time they are reached.
%%
%% Sandboxed code can build a term of a few hundred words whose flattened
%% form is terabytes (`{T, T}' forty times over). Copying such a term to
%% another process, comparing two of them or flattening one as iodata runs in
%% one non-yielding call that outlasts every timeout or aborts the VM. Every
%% such operation the sandbox performs on sandbox data asks {@link within/3}
%% first; its work is bounded by the limit, not by the term.
-module(seccomp_size).

-export([within/3, cost/3]).

-type mode() :: term | iodata.
-export_type([mode/0]).

%% A process's timeslice, in reductions.
-define(SLICE, 4000).
%% Words of a fun beyond its environment, and of a bignum beyond its digits.
-define(HEADER_BYTES, 32).

%% @doc Whether `Term' costs at most `Limit' bytes: as a term (`term': words
%% times eight plus binary bytes), or as iodata (`iodata': the bytes a
%% flattener writes, at least one per list cell).
-spec within(term(), non_neg_integer(), mode()) -> boolean().
within(Term, Limit, Mode) -> cost(Term, Limit, Mode) =/= over.

%% @doc The cost of `Term', or `over' once it passes `Limit'.
-spec cost(term(), non_neg_integer(), mode()) -> non_neg_integer() | over.
cost(Term, Limit, Mode) -> cost(Term, Limit, Mode, []).

cost(Term, Limit, Mode, Known) ->
    Walked = case seccomp_nif:flat_size(Term, Limit, Known, Mode) of
                 dirty ->
                     %% A long walk: the caller's timeslice is spent.
                     Long = seccomp_nif:flat_size_dirty(Term, Limit, Known, Mode),
                     erlang:bump_reductions(?SLICE),
                     Long;
                 Done ->
                     Done
             end,
    case Walked of
        {ok, N} -> N;
        over -> over;
        {opaque, Terms} ->
            case opaque_costs(Terms, Limit, Mode, []) of
                over -> over;
                More -> cost(Term, Limit, Mode, More ++ Known)
            end
    end.

%% Each opaque term occurs at least once in the flattened term, so together
%% they share one budget: the work stays bounded by `Limit' however many
%% distinct funs hold the same large environment.
opaque_costs([], _Left, _Mode, Acc) -> Acc;
opaque_costs([T | Rest], Left, Mode, Acc) ->
    case opaque_cost(T, Left, Mode) of
        over -> over;
        C when C > Left -> over;
        C -> opaque_costs(Rest, Left - C, Mode, [{T, C} | Acc])
    end.

opaque_cost(B, _Left, iodata) when is_bitstring(B) -> byte_size(B);
opaque_cost(_T, _Left, iodata) -> 1;  % not iodata: a flattener refuses it
opaque_cost(F, Left, term) when is_function(F) ->
    {env, Env} = erlang:fun_info(F, env),
    case cost(Env, Left, term) of
        over -> over;
        C -> C + ?HEADER_BYTES
    end;
opaque_cost(B, _Left, term) when is_bitstring(B) -> byte_size(B) + ?HEADER_BYTES;
opaque_cost(N, _Left, term) when is_integer(N) -> byte_size(binary:encode_unsigned(abs(N))) + ?HEADER_BYTES;
opaque_cost(_Other, _Left, term) -> ?HEADER_BYTES.
