%% @doc Bounds on what one call from sandboxed code may allocate or walk
%% before the VM acts on it: sizes of binaries to build, copies to make,
%% terms a call flattens, compares or hashes in one step, and bignum
%% operands (a bignum built-in can neither yield nor be killed). Past a
%% bound the run ends with `memory_limit'.
-module(seccomp_sandbox_bounds).

-include("seccomp_sandbox.hrl").

-export([bounded_decode/2, concat/2, bounded_value/2, bounded_integer_result/2, bounded_work/4, flattener_args/4, bounded_args/2, bounded_size/3, bounded_integer/3,
         bounded_bytes/3, unit_size/2, arith/4]).

%% @doc A value leaving sandboxed code for compiled code (what a fun
%% returns): an integer within the bignum bound, any other term within the
%% copy bound.
-spec bounded_value(term(), seccomp_sandbox_ctx:ctx()) -> true.
bounded_value(R, Ctx) when is_integer(R) -> bounded_integer({bignum, operand}, [R], Ctx);
bounded_value(R, Ctx) -> bounded_args([R], Ctx).

%% @doc What a library call returns to sandboxed code: an integer it built
%% in compiled code (`Enum.product') within the bignum bound, as if the
%% code had built it.
-spec bounded_integer_result(term(), seccomp_sandbox_ctx:ctx()) -> term().
bounded_integer_result(R, _Ctx) when not is_integer(R); R =< 1 bsl 64, R >= -(1 bsl 64) -> R;
bounded_integer_result(R, Ctx) ->
    bounded_integer({bignum, operand}, [R], Ctx),
    R.

%% @doc A binary construction whose segments are whole binaries or
%% bitstrings (`a <> b', interpolation): their total within `max_binary'
%% before one is allocated. Parts are `{binary | bitstring, Value}'.
-spec concat([{binary | bitstring, term()}], seccomp_sandbox_ctx:ctx()) -> bitstring().
concat(Parts, #ctx{max_binary = Max} = Ctx) ->
    Bits = lists:sum([part_bits(P) || P <- Parts]),
    Bits =< Max * 8 andalso seccomp_caller_binaries:within() orelse seccomp_sandbox_ctx:memory_limit(Ctx),
    list_to_bitstring([V || {_, V} <- Parts]).

part_bits({binary, V}) when is_binary(V) -> bit_size(V);
part_bits({bitstring, V}) when is_bitstring(V) -> bit_size(V);
part_bits({_, V}) -> erlang:error(badarg, [V]).

%% @doc The flattened arguments of a flattener, and the worst-case work of
%% a call whose cost grows faster than its input (see `seccomp_cost').
-spec bounded_work(module(), atom(), list(), seccomp_sandbox_ctx:ctx()) -> true.
bounded_work(M, F, Args, #ctx{max_binary = Max} = Ctx) ->
    %% A flattener's arguments are bounded whole: nothing more to compare.
    flattener_args(M, F, Args, Ctx) orelse compared_args(M, F, Args, Ctx),
    seccomp_cost:within(M, F, Args, Max) andalso seccomp_caller_binaries:within()
        orelse seccomp_sandbox_ctx:memory_limit(Ctx),
    genuine_patterns(M, F, Args, Ctx).

%% Compiled patterns a built-in would run unchecked (see `seccomp_opaque').
genuine_patterns(M, F, Args, #ctx{tab = Tab, max_binary = Max} = Ctx) ->
    case seccomp_opaque:check(M, F, Args, Tab, Max) of
        ok -> true;
        over -> seccomp_sandbox_ctx:memory_limit(Ctx);
        forged -> erlang:error({forged_term, compiled_pattern})
    end.

%% The arguments a collection function compares or hashes: all but the
%% containers, maps and (the last argument, by the modules' convention)
%% the tuples of the tree and hash modules.
compared(M, Args) when M =:= gb_sets; M =:= gb_trees; M =:= sets; M =:= dict; M =:= queue ->
    case lists:reverse(Args) of
        [Last | Rest] when is_tuple(Last) -> [A || A <- Rest, not is_map(A)];
        _ -> [A || A <- Args, not is_map(A)]
    end;
compared(_M, Args) ->
    [A || A <- Args, not is_map(A)].

%% A comparison or a hash walks a term in one step: what a collection
%% function compares or hashes is bounded (see
%% `seccomp_profiles:compares_terms/2'). Library code that dispatches on
%% its arguments may compare any of them: all are bounded.
compared_args(M, F, Args, Ctx) ->
    case seccomp_profiles:compares_terms(M, F) of
        true -> bounded_args(compared(M, Args), Ctx);
        false -> seccomp_profiles:applies_no_data(M) orelse M =:= erlang orelse bounded_args(Args, Ctx)
    end.

%% @doc A call that may flatten or walk its arguments in one uninterruptible
%% step gets only arguments within the copy bound.
-spec flattener_args(module(), atom(), list(), seccomp_sandbox_ctx:ctx()) -> boolean().
flattener_args(M, F, Args, Ctx) ->
    seccomp_flatteners:member(M, F, length(Args)) andalso bounded_args(Args, Ctx).

%% @doc Arguments within the copy bound, or `memory_limit'.
-spec bounded_args(list(), seccomp_sandbox_ctx:ctx()) -> true.
bounded_args(Args, Ctx) ->
    seccomp_sandbox_ctx:copyable(Args, Ctx) orelse seccomp_sandbox_ctx:memory_limit(Ctx).

%% @doc A binary segment's size (times its unit, in bits) within `max_binary'.
-spec bounded_size(term(), term(), seccomp_sandbox_ctx:ctx()) -> term().
bounded_size(Size, Unit, #ctx{max_binary = Max} = Ctx) when is_integer(Size), is_integer(Unit) ->
    case Size * Unit =< Max * 8 andalso seccomp_caller_binaries:within() of
        true -> Size;
        false -> seccomp_sandbox_ctx:memory_limit(Ctx)
    end;
bounded_size(Size, _Unit, _Ctx) ->
    Size.

%% @doc Bignum arithmetic and conversions run inside one BIF call that
%% neither yields nor lets the process be killed: the operands' sizes decide
%% how long, so they are capped (see `seccomp_cost').
-spec bounded_integer({bignum, atom()}, list(), seccomp_sandbox_ctx:ctx()) -> true.
bounded_integer({bignum, Class}, Args, Ctx) ->
    seccomp_cost:integer_op(Class, Args) orelse seccomp_sandbox_ctx:memory_limit(Ctx).

%% @doc An external term may be decoded only if what it decodes to fits:
%% the runtime allocates the whole decoded term at once, before a heap limit
%% can act, and a compressed form (tag 80) hides its size behind the size it
%% declares. Up to two words (16 bytes) of heap per byte of the external
%% form (a list of `[]'), which must also fit `max_binary'.
-spec bounded_decode(term(), seccomp_sandbox_ctx:ctx()) -> ok.
bounded_decode(Bin, #ctx{max_binary = MaxBin, max_copy = MaxCopy} = Ctx) when is_binary(Bin) ->
    External = case Bin of
                   <<131, 80, Declared:32, _/binary>> -> Declared;
                   _ -> byte_size(Bin)
               end,
    case External =< MaxBin andalso 16 * External =< MaxCopy of
        true -> ok;
        false -> seccomp_sandbox_ctx:memory_limit(Ctx)
    end;
bounded_decode(_NotBinary, _Ctx) ->
    ok.

%% @doc `Count' copies of something of `Unit' bytes (a word, for terms).
-spec bounded_bytes(term(), pos_integer(), seccomp_sandbox_ctx:ctx()) -> ok.
bounded_bytes(Count, Unit, #ctx{max_binary = Max} = Ctx) when is_integer(Count), Count * Unit > Max ->
    seccomp_sandbox_ctx:memory_limit(Ctx);
bounded_bytes(_Count, _Unit, Ctx) ->
    seccomp_caller_binaries:within() orelse seccomp_sandbox_ctx:memory_limit(Ctx),
    ok.

%% @doc The bytes of one copy of what an amplifier repeats.
-spec unit_size(term(), non_neg_integer()) -> pos_integer().
unit_size(B, _Max) when is_binary(B) -> max(1, byte_size(B));
unit_size(L, Max) when is_list(L) ->
    %% Past `Max' the exact size does not matter: the walk stops there.
    case seccomp_size:cost(L, Max, iodata) of
        over -> Max + 1;
        N -> max(1, N)
    end;
unit_size(_, _Max) -> 8.

%% @doc Integer arithmetic in prepared code whose policy allows it (`*',
%% `bsl', `div', `rem'): floats and small integers directly, larger
%% integers within the bignum bound.
-spec arith('*' | 'bsl' | 'div' | 'rem', number(), number(), seccomp_sandbox_ctx:ctx()) -> number().
arith('*', X, Y, _Ctx) when is_float(X); is_float(Y) -> X * Y;
arith('*', X, Y, _Ctx) when is_integer(X), is_integer(Y), abs(X) < ?SMALL, abs(Y) < ?SMALL -> X * Y;
arith('bsl', X, Y, _Ctx) when is_integer(X), is_integer(Y), abs(X) < ?SMALL, Y =< 64 -> X bsl Y;
arith(Op, X, Y, _Ctx) when (Op =:= 'div' orelse Op =:= 'rem'), abs(Y) < ?SMALL -> erlang:Op(X, Y);
arith(Op, X, Y, Ctx) ->
    bounded_integer({bignum, seccomp_profiles:bignum_class(erlang, Op, 2)}, [X, Y], Ctx),
    erlang:Op(X, Y).
