%% @doc Bounds on calls whose work grows faster than their input: one call of
%% them runs without yielding (or allocates outside the heap limit) for a
%% time or a size that is a product, a square or worse of its arguments'
%% sizes.
%%
%% <ul>
%% <li>Bignum arithmetic and conversions (`*', `div', `rem', `bsl', powers,
%%     integers to and from text): operands and results within 8 KiB; text
%%     turned into an integer without a run of more than 19,729 letters or
%%     digits (the decimal digits of such an integer).</li>
%% <li>Replacement, splitting and matching with compiled patterns, regular
%%     expressions (the `superlinear' set of `seccomp_reach'), and functions
%%     that flatten what they build (`seccomp_flatteners': a separator
%%     repeated between elements): the worst-case
%%     output, the sum of the arguments' sizes plus the product of the two
%%     largest, and the tables a list of patterns compiles to (one of 256
%%     words per pattern byte), within the binary limit.</li>
%% <li>Functions that can turn text into an integer (the `integer_text' set):
%%     no argument holds a longer run of letters or digits.</li>
%% </ul>
-module(seccomp_cost).

-export([integer_op/2, within/4]).

%% 8 KiB integers: printing, parsing or dividing one stays within tens of
%% milliseconds (printing is worse than quadratic in the size).
-define(MAX_INTEGER_BITS, 65536).
%% Decimal digits of the largest such integer.
-define(MAX_DIGITS, 19729).
%% The goto table of one Aho-Corasick node: 256 words.
-define(PATTERN_NODE_BYTES, 2048).

%% @doc Whether the integer operation `Op' on `Args' stays within the bound.
-spec integer_op(seccomp_profiles:bignum_class(), list()) -> boolean().
integer_op('*', [X, Y]) when is_integer(X), is_integer(Y) ->
    integer_bits(X) + integer_bits(Y) =< ?MAX_INTEGER_BITS;
integer_op('bsl', [X, Y]) when is_integer(X), is_integer(Y) ->
    integer_bits(X) + max(0, Y) =< ?MAX_INTEGER_BITS;
integer_op(pow, [X, Y]) when is_integer(X), is_integer(Y), Y >= 0 ->
    abs(X) =< 1 orelse integer_bits(X) * Y =< ?MAX_INTEGER_BITS;
integer_op(operand, Args) ->
    %% div, rem, printing: quadratic in the operands' sizes.
    lists:all(fun(X) -> not is_integer(X) orelse integer_bits(X) =< ?MAX_INTEGER_BITS end, Args);
integer_op(text, [Text | _]) ->
    %% Text to integer: quadratic in the digits.
    no_long_digit_run([Text]);
integer_op(bytes, [Bin | _]) when is_binary(Bin) ->
    %% Bytes to integer: an integer of that many bytes.
    byte_size(Bin) * 8 =< ?MAX_INTEGER_BITS;
integer_op(product, [Numbers]) ->
    %% The product's bits: at most the sum of its factors' bits.
    product_bits(Numbers) =< ?MAX_INTEGER_BITS;
integer_op(_Class, _Args) ->
    true.

product_bits(#{'__struct__' := 'Elixir.Range', first := First, last := Last} = Range)
  when is_integer(First), is_integer(Last) ->
    Step = abs(maps:get(step, Range, 1)),
    Count = abs(Last - First) div max(Step, 1) + 1,
    Count * integer_bits(max(abs(First), abs(Last)));
product_bits(L) when is_list(L) ->
    %% A longer list is over the bound at one bit per factor anyway.
    lists:sum([integer_bits(X) || X <- lists:sublist(L, ?MAX_INTEGER_BITS + 1), is_integer(X)]);
product_bits(_Other) ->
    %% Another enumerable: its elements are not known here.
    ?MAX_INTEGER_BITS + 1.

%% Bits of an integer's magnitude (at least one).
integer_bits(N) ->
    <<First, _/binary>> = B = binary:encode_unsigned(abs(N)),
    8 * (byte_size(B) - 1) + max(1, top_bit(First)).

top_bit(0) -> 0;
top_bit(Byte) -> 1 + top_bit(Byte bsr 1).

%% @doc Whether a call of `M:F' with `Args' stays within `Max' bytes of
%% output and working memory, and its integer text within the digit bound,
%% judged from the arguments alone.
-spec within(module(), atom(), list(), non_neg_integer()) -> boolean().
within(M, F, Args, Max) ->
    A = length(Args),
    %% Flatteners too: `Enum.join' repeats its separator between elements.
    (not (seccomp_reach:member(superlinear, M, F, A) orelse seccomp_flatteners:member(M, F, A))
     orelse product_within(Args, Max))
        andalso (not seccomp_reach:member(integer_text, M, F, A) orelse no_long_digit_run(Args)).

product_within(Args, Max) ->
    Costs = [seccomp_size:cost(X, Max, iodata) || X <- Args],
    case lists:member(over, Costs) of
        true -> false;
        false ->
            [C1, C2 | _] = lists:reverse(lists:sort([0, 0 | Costs])),
            Patterns = lists:sum([pattern_table(X) || X <- patterns(Args)]),
            lists:sum(Costs) + C1 * C2 + Patterns =< Max
    end.

%% Patterns follow the subject, or come alone (`binary:compile_pattern/1').
patterns([Only]) -> [Only];
patterns([_Subject | Rest]) -> Rest;
patterns([]) -> [].

%% A list of two or more binaries may be compiled to an Aho-Corasick automaton.
pattern_table([B1, B2 | _] = L) when is_binary(B1), is_binary(B2) ->
    ?PATTERN_NODE_BYTES * lists:sum([byte_size(B) || B <- L, is_binary(B)]);
pattern_table(_) ->
    0.

no_long_digit_run(Args) ->
    lists:all(fun(X) when is_binary(X) -> digit_run(X, 0);
                 (X) when is_list(X) -> digit_run_list(X, 0);
                 (_) -> true
              end, Args).

%% Whether no run of letters and digits is longer than ?MAX_DIGITS: one
%% pass, stopping at the first long run.
-define(IS_ALNUM(C), ((C >= $0 andalso C =< $9) orelse (C >= $a andalso C =< $z)
                      orelse (C >= $A andalso C =< $Z))).

digit_run(_, Run) when Run > ?MAX_DIGITS -> false;
digit_run(<<C, Rest/binary>>, Run) when ?IS_ALNUM(C) -> digit_run(Rest, Run + 1);
digit_run(<<_, Rest/binary>>, _Run) -> digit_run(Rest, 0);
digit_run(_, _Run) -> true.

digit_run_list(_, Run) when Run > ?MAX_DIGITS -> false;
digit_run_list([C | Rest], Run) when is_integer(C), ?IS_ALNUM(C) -> digit_run_list(Rest, Run + 1);
digit_run_list([_ | Rest], _Run) -> digit_run_list(Rest, 0);
digit_run_list(_, _Run) -> true.
