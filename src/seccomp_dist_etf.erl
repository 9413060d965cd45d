%% @doc Reads the external term format of one distribution term without
%% decoding it: where the term ends, which atoms it would create, whether it
%% holds funs, how much memory decoding it would take, and which of this
%% node's pids and references it names.
%%
%% Terms are walked in prefix order with a count of terms still to read, so
%% nesting depth costs nothing. Binaries are skipped, not copied. Tags that
%% a connection without the atom cache never carries (atom cache references,
%% compressed terms, `LOCAL_EXT') and unknown tags are errors.
-module(seccomp_dist_etf).

-export([scan/2, local_terms/2, locals_in/1]).
-export_type([info/0]).

%% `term': the decoded term, when scanning decoded it anyway.
-type info() :: #{size := non_neg_integer(), new_atoms := [binary()], funs := non_neg_integer(),
                  memory := non_neg_integer(), term => term()}.

-define(VERSION, 131).
-define(WORD, 8).
%% Binaries up to this size are copied onto the receiver's heap.
-define(HEAP_BIN, 64).
-define(COMPRESSED, 80).
%% Terms up to this size are decoded by the runtime to be judged (at most
%% 32 bytes of heap per byte: a bound far below any message limit).
-define(QUICK, 65536).
-define(IS_ATOM_TAG(T), (T =:= 100 orelse T =:= 118 orelse T =:= 115 orelse T =:= 119)).

-record(acc, {new = #{} :: #{binary() => true}, budget :: non_neg_integer(), funs = 0 :: non_neg_integer(),
              memory = 0 :: non_neg_integer(), node :: binary() | none,
              locals = [] :: [pid() | reference()]}).

%% @doc Scan the term at the start of `Bin' (with its version byte). At most
%% `MaxNewAtoms' distinct atoms unknown to this node are allowed; more is
%% `{error, atom_budget}'.
-spec scan(binary(), non_neg_integer()) -> {ok, info()} | {error, term()}.
scan(<<?VERSION, Tag, _/binary>> = Bin, MaxNewAtoms) when Tag =/= ?COMPRESSED, byte_size(Bin) =< ?QUICK ->
    quick(Bin, MaxNewAtoms);
scan(Bin, MaxNewAtoms) ->
    walk_term(Bin, MaxNewAtoms).

%% Small terms: the runtime's decoder (`safe': it fails rather than create an
%% atom) is much faster than the walk. A term it decodes names no new atom.
%% Anything else, and every large term, is walked.
quick(Bin, MaxNewAtoms) ->
    try binary_to_term(Bin, [safe, used]) of
        {Term, Used} ->
            Words = erts_debug:flat_size(Term),
            {ok, #{size => Used, new_atoms => [], funs => funs(Bin, Used, Term, Words), term => Term,
                   memory => Words * ?WORD + Used}}
    catch
        error:badarg -> walk_term(Bin, MaxNewAtoms)
    end.

%% The funs of a decoded term. A term whose encoding is larger than its heap
%% is mostly binary data: walking its few heap words is cheapest. Otherwise
%% its encoding is searched for the bytes of fun tags first (no such byte
%% means no fun), and the term walked only if one is found.
funs(Bin, Used, Term, Words) when Used < Words * ?WORD ->
    case no_fun_tag(Bin, Used) of
        true -> 0;
        false -> funs_in(Term, 0)
    end;
funs(_Bin, _Used, Term, _Words) ->
    funs_in(Term, 0).

funs_in(T, N) when is_function(T) -> funs_in(element(2, erlang:fun_info(T, env)), N + 1);
funs_in([H | T], N) -> funs_in(T, funs_in(H, N));
funs_in(T, N) when is_tuple(T) -> elements_funs(T, tuple_size(T), N);
funs_in(T, N) when is_map(T) -> maps:fold(fun(K, V, Acc) -> funs_in(V, funs_in(K, Acc)) end, N, T);
funs_in(_, N) -> N.

elements_funs(_T, 0, N) -> N;
elements_funs(T, I, N) -> elements_funs(T, I - 1, funs_in(element(I, T), N)).

%% Whether none of the first `Used' bytes is a fun's tag (new, export, old).
%% One compiled single-byte pattern per tag: the runtime searches each at a
%% fraction of a nanosecond per byte, where one pattern of all three (a
%% multi-pattern automaton) takes about 2 ns per byte, 8 us per 4 KiB message.
no_fun_tag(Bin, Used) ->
    lists:all(fun(Pattern) -> binary:match(Bin, Pattern, [{scope, {0, Used}}]) =:= nomatch end,
              fun_tag_patterns()).

fun_tag_patterns() ->
    case persistent_term:get(?MODULE, undefined) of
        undefined ->
            Patterns = [binary:compile_pattern(<<T>>) || T <- [112, 113, 117]],
            persistent_term:put(?MODULE, Patterns),
            Patterns;
        Patterns -> Patterns
    end.

walk_term(<<?VERSION, Rest/binary>> = Bin, MaxNewAtoms) ->
    try walk(Rest, 1, #acc{budget = MaxNewAtoms, node = none}) of
        {Left, #acc{new = New, funs = Funs, memory = Memory}} ->
            {ok, #{size => byte_size(Bin) - byte_size(Left), new_atoms => maps:keys(New),
                   funs => Funs, memory => Memory}}
    catch
        throw:Why -> {error, Why};
        error:_ -> {error, truncated}
    end;
walk_term(_, _) ->
    {error, bad_version}.

%% @doc This node's pids and references in the terms of `Bin' (one or more
%% terms one after another, as in a packet). `NodeName' is `atom_to_binary(node())'.
%% Our own outgoing data: no atom is new, nothing is refused.
-spec local_terms(binary(), binary()) -> [pid() | reference()].
local_terms(Bin, _NodeName) when byte_size(Bin) =< ?QUICK ->
    try decoded_locals(Bin, [])
    catch _:_ -> []
    end;
local_terms(Bin, NodeName) ->
    try collect(Bin, #acc{budget = 0, node = NodeName}) of
        #acc{locals = Locals} -> Locals
    catch _:_ -> []
    end.

%% Our own small packets are decoded and their terms walked.
decoded_locals(<<>>, Acc) -> Acc;
decoded_locals(Bin, Acc) ->
    {Term, Used} = binary_to_term(Bin, [used]),
    <<_:Used/binary, Rest/binary>> = Bin,
    decoded_locals(Rest, locals_in(Term, Acc)).

%% @doc This node's pids and references in a decoded term.
-spec locals_in(term()) -> [pid() | reference()].
locals_in(T) -> locals_in(T, []).

locals_in(T, Acc) when is_pid(T); is_reference(T) ->
    case node(T) =:= node() of
        true -> [T | Acc];
        false -> Acc
    end;
locals_in([H | T], Acc) -> locals_in(T, locals_in(H, Acc));
locals_in(T, Acc) when is_tuple(T) -> locals_in(tuple_to_list(T), Acc);
locals_in(T, Acc) when is_map(T) -> locals_in(maps:to_list(T), Acc);
locals_in(T, Acc) when is_function(T) -> locals_in(element(2, erlang:fun_info(T, env)), Acc);
locals_in(_, Acc) -> Acc.

collect(<<>>, Acc) -> Acc;
collect(<<?VERSION, Rest/binary>>, Acc) ->
    {Left, Acc1} = walk(Rest, 1, Acc),
    collect(Left, Acc1).

%%% The walk: `N' terms are still to be read ---------------------------------------

walk(Bin, 0, Acc) -> {Bin, Acc};
walk(<<Tag, Rest/binary>>, N, Acc) -> term(Tag, Rest, N - 1, Acc).

term(97, <<_, R/binary>>, N, A) -> walk(R, N, A);
term(98, <<_:32, R/binary>>, N, A) -> walk(R, N, words(2, A));
term(70, <<_:64, R/binary>>, N, A) -> walk(R, N, words(3, A));
term(99, <<_:31/binary, R/binary>>, N, A) -> walk(R, N, words(3, A));
term(106, R, N, A) -> walk(R, N, A);
term(104, <<Ar, R/binary>>, N, A) -> walk(R, N + Ar, words(Ar + 1, A));
term(105, <<Ar:32, R/binary>>, N, A) -> walk(R, N + Ar, words(Ar + 1, A));
term(108, <<Len:32, R/binary>>, N, A) -> walk(R, N + Len + 1, words(2 * Len, A));
term(116, <<Ar:32, R/binary>>, N, A) -> walk(R, N + 2 * Ar, words(3 * Ar + 3, A));
term(107, <<Len:16, _:Len/binary, R/binary>>, N, A) -> walk(R, N, words(2 * Len, A));
term(109, <<Len:32, _:Len/binary, R/binary>>, N, A) -> walk(R, N, binary(Len, A));
term(77, <<Len:32, _Bits, _:Len/binary, R/binary>>, N, A) -> walk(R, N, binary(Len, A));
term(110, <<Len, _Sign, _:Len/binary, R/binary>>, N, A) -> walk(R, N, words(Len div ?WORD + 2, A));
term(111, <<Len:32, _Sign, _:Len/binary, R/binary>>, N, A) -> walk(R, N, words(Len div ?WORD + 2, A));
term(Tag, R, N, A) when ?IS_ATOM_TAG(Tag) ->
    {Name, R1} = atom_name(Tag, R),
    walk(R1, N, atom(Tag, Name, A));
%% Pids, ports and references: a node name, then fixed-size fields.
term(88, R, N, A) -> identifier(88, R, 12, N, A);
term(103, R, N, A) -> identifier(103, R, 9, N, A);
term(89, R, N, A) -> identifier(89, R, 8, N, A);
term(120, R, N, A) -> identifier(120, R, 12, N, A);
term(102, R, N, A) -> identifier(102, R, 5, N, A);
term(101, R, N, A) -> identifier(101, R, 5, N, A);
term(90, <<Len:16, R/binary>>, N, A) when Len =< 5 -> identifier({90, Len}, R, 4 + 4 * Len, N, A);
term(114, <<Len:16, R/binary>>, N, A) when Len =< 5 -> identifier({114, Len}, R, 1 + 4 * Len, N, A);
%% Module, function, arity.
term(113, R, N, A) -> walk(R, N + 3, funs(A));
%% Module, old index, old uniq, creator pid, then the free variables.
term(112, <<_Size:32, _Arity, _Uniq:16/binary, _Index:32, Free:32, R/binary>>, N, A) ->
    walk(R, N + 4 + Free, funs(words(Free + 8, A)));
term(Tag, _R, _N, _A) ->
    throw({bad_tag, Tag}).

identifier(Kind, <<ATag, R/binary>> = Whole, Fixed, N, A) when ?IS_ATOM_TAG(ATag) ->
    {Name, R1} = atom_name(ATag, R),
    <<Fields:Fixed/binary, R2/binary>> = R1,
    A1 = atom(ATag, Name, words(6, A)),
    case A1#acc.node of
        Name when Kind =:= 88; Kind =:= 103; element(1, Kind) =:= 90; element(1, Kind) =:= 114 ->
            Len = byte_size(Whole) - byte_size(R2),
            Head = case Kind of {T, L} -> <<T, L:16>>; T -> <<T>> end,
            Local = binary_to_term(<<?VERSION, Head/binary, Whole:Len/binary>>),
            _ = Fields,
            walk(R2, N, A1#acc{locals = [Local | A1#acc.locals]});
        _ ->
            walk(R2, N, A1)
    end;
identifier(_Kind, _R, _Fixed, _N, _A) ->
    throw(bad_node_name).

atom_name(T, <<Len:16, Name:Len/binary, R/binary>>) when T =:= 100; T =:= 118 -> {Name, R};
atom_name(_, <<Len, Name:Len/binary, R/binary>>) -> {Name, R}.

-compile({inline, [words/2, binary/2, funs/1]}).
words(W, #acc{memory = M} = A) -> A#acc{memory = M + W * ?WORD}.

binary(Len, A) when Len =< ?HEAP_BIN -> words(Len div ?WORD + 2, A);
binary(Len, A) -> words(6 + Len div ?WORD, A).

funs(#acc{funs = F} = A) -> A#acc{funs = F + 1}.

%% Our own outgoing data (`node' set) names only existing atoms.
atom(_Tag, _Name, #acc{node = Node} = A) when is_binary(Node) -> A;
atom(Tag, Name, #acc{new = New, budget = Budget} = A) ->
    try binary_to_existing_atom(Name, encoding(Tag, Name)) of
        _ -> A
    catch
        error:badarg when is_map_key(Name, New) -> A;
        error:badarg when map_size(New) < Budget -> A#acc{new = New#{Name => true}};
        error:badarg -> throw(atom_budget)
    end.

%% An ASCII name is the same in both encodings, and the runtime looks up
%% latin-1 names much faster than UTF-8 ones.
encoding(100, _Name) -> latin1;
encoding(115, _Name) -> latin1;
encoding(_Tag, Name) ->
    case ascii(Name) of
        true -> latin1;
        false -> utf8
    end.

ascii(<<C, Rest/binary>>) when C < 128 -> ascii(Rest);
ascii(<<>>) -> true;
ascii(_) -> false.
