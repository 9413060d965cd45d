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

%% ETF of a list of UTF-8 atoms, written by hand: the runtime would create them.
atoms_list(Names) ->
    Atoms = << <<119, (byte_size(N)), N/binary>> || N <- Names >>,
    <<131, 108, (length(Names)):32, Atoms/binary, 106>>.

%% Atoms this node does not have are named once each, in Latin-1 or beyond
%% it; atoms it has, in either encoding, never; none is created by looking.
new_atoms_are_named_once_and_never_created_test() ->
    %% made at run time (the compiler folds or drops a constant one)
    Known = atom_to_binary(list_to_atom("seccomp_etf_" ++ [232 + rand:uniform(1)]), utf8),
    Fresh = <<"seccomp_etf_test_fresh_1">>,
    Wide = <<"seccomp_etf_test_€"/utf8>>,
    Bin = atoms_list([<<"ok">>, Fresh, Known, Wide, Fresh]),
    {ok, #{new_atoms := New, size := Size}} = seccomp_dist_etf:scan(<<Bin/binary, "trailing">>, 10),
    ?assertEqual(lists:sort([Fresh, Wide]), lists:sort(New)),
    ?assertEqual(byte_size(Bin), Size),
    ?assertEqual({error, atom_budget}, seccomp_dist_etf:scan(Bin, 1)),
    ?assertError(badarg, binary_to_existing_atom(Fresh, utf8)),
    ?assertError(badarg, binary_to_existing_atom(Wide, utf8)).

%% Malformed input is an error, never a crash: truncation, unknown tags,
%% a pid whose node is not an atom.
malformed_terms_are_errors_test() ->
    Whole = term_to_binary({self(), <<1, 2, 3>>, "abc"}),
    [?assertMatch({error, _}, seccomp_dist_etf:scan(binary:part(Whole, 0, N), 10))
     || N <- lists:seq(0, byte_size(Whole) - 1)],
    ?assertEqual({error, {bad_tag, 82}}, seccomp_dist_etf:scan(<<131, 82, 0>>, 10)),
    ?assertEqual({error, bad_node_name}, seccomp_dist_etf:scan(<<131, 88, 97, 1, 0:96>>, 10)).

%% A term too large for one short native call is walked on a dirty
%% scheduler, with the same answer.
long_terms_are_walked_whole_test() ->
    Long = lists:seq(1, 200000),
    {ok, #{size := Size, memory := Memory}} = seccomp_dist_etf:scan(term_to_binary(Long), 10),
    ?assertEqual(byte_size(term_to_binary(Long)), Size),
    ?assert(Memory >= erts_debug:flat_size(Long) * 8).

%% What an outgoing packet shows the peer: this node's pids and references
%% in its control term and payload; not other nodes', not ports, nothing
%% from a packet that is not whole terms; and a monitor it sets up fires once.
shown_pids_and_references_are_held_test() ->
    Caps = seccomp_dist_caps:new(),
    Ref = make_ref(),
    Other = binary_to_term(<<131, 88, 119, 3, "a@b", 1:32, 2:32, 3:32>>),
    Proc = spawn(fun() -> ok end),
    Cut = <<112, (term_to_binary({2, '', x}))/binary, (term_to_binary({Proc, make_ref()}))/binary>>,
    ok = seccomp_dist_caps:show(binary:part(Cut, 0, byte_size(Cut) - 3), Caps),
    ?assertNot(seccomp_dist_caps:holds(Caps, Proc)),
    ok = seccomp_dist_caps:show([<<112>>, term_to_binary({22, self(), Other}),
                                 term_to_binary({[Ref, Other], hd(erlang:ports()), #{key => Ref}})], Caps),
    ?assert(seccomp_dist_caps:holds(Caps, self())),
    ?assert(seccomp_dist_caps:holds(Caps, Ref)),
    ?assertNot(seccomp_dist_caps:holds(Caps, Other)),
    ?assertNot(seccomp_dist_caps:holds(Caps, make_ref())),
    Monitor = make_ref(),
    ok = seccomp_dist_caps:show(<<112, (term_to_binary({19, self(), Other, Monitor}))/binary>>, Caps),
    ?assertNot(seccomp_dist_caps:monitor_fired(Caps, Monitor, self())),
    ?assertNot(seccomp_dist_caps:monitor_fired(Caps, Monitor, 'a@b')),
    ?assert(seccomp_dist_caps:monitor_fired(Caps, Monitor, Other)),
    ?assertNot(seccomp_dist_caps:monitor_fired(Caps, Monitor, Other)),
    Named = make_ref(),
    ok = seccomp_dist_caps:show(<<112, (term_to_binary({19, self(), some_name, Named}))/binary>>, Caps),
    ?assertNot(seccomp_dist_caps:monitor_fired(Caps, Named, Other)),
    ?assert(seccomp_dist_caps:monitor_fired(Caps, Named, some_name)).
