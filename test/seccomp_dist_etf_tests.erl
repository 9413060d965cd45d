%% EUnit tests of the carrier's term scanner: what it counts in a term, and
%% that its cost follows the term's structure, not the bytes of its binaries.
-module(seccomp_dist_etf_tests).
-include_lib("eunit/include/eunit.hrl").

funs_of(Term) ->
    {ok, #{funs := Funs}} = seccomp_dist_etf:scan(term_to_binary(Term), 10),
    Funs.

%% Every place a fun can sit in a small (decoded) term, and binaries made of
%% the bytes of fun tags, which hold none.
funs_are_counted_wherever_they_sit_test() ->
    F = fun erlang:node/0,
    G = closure(F),
    Tags = binary:copy(<<112, 113, 117>>, 100),
    ?assertEqual([1, 1, 2, 2, 1, 2, 1, 0, 0, 0, 0],
                 [funs_of(T) || T <- [{a, F}, #{F => 1}, #{1 => [F, F]}, [1, 2, {3, {4, G}}],
                                      {binary:copy(<<0>>, 4096), F}, G, [F | improper],
                                      {Tags, 3}, Tags, "pqu", {}]]).

%% A fun whose environment holds `Term'.
closure(Term) -> fun() -> Term end.

%% Fastest of a few runs, in microseconds.
fastest(Fun) ->
    lists:min([element(1, timer:tc(fun() -> [Fun() || _ <- lists:seq(1, 20)] end)) || _ <- lists:seq(1, 15)]).

%% Scanning a message of binary data costs a small multiple of decoding it,
%% whatever its size up to the decoder's limit (a scan that searched the
%% binary's bytes with a multi-byte pattern cost 25-60 times the decode).
scan_costs_about_a_decode_test_() ->
    {timeout, 60,
     fun() ->
             [begin
                  Bin = term_to_binary(Term),
                  Decode = fastest(fun() -> binary_to_term(Bin) end),
                  Scan = fastest(fun() -> seccomp_dist_etf:scan(Bin, 10) end),
                  ?assert(Scan =< 4 * Decode + 50, {byte_size(Bin), Scan, Decode})
              end || Term <- [{msg, binary:copy(<<0>>, 4096)}, {msg, binary:copy(<<0>>, 60000)}]]
     end}.
