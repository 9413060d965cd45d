%% @doc The functions that walk or flatten a whole term in one call the VM
%% cannot interrupt, allocate in proportion to its flattened size, or copy it
%% to another process or a port (output to the group leader included): the
%% built-in sinks, and every exported function of the installed Elixir,
%% stdlib and kernel that can reach one of them, derived from the shared
%% call graph of the installed code (`seccomp_callgraph').
%%
%% The handler bounds the flattened cost of every argument of these calls
%% (see `seccomp_size'). Where the set cannot be derived (no debug
%% information in the installed code) every call counts as a member.
-module(seccomp_flatteners).

-export([member/3, ensure/0, spec/0, derive/0, sinks/0, iodata_sinks/0, copying_sinks/0]).

-define(KEY, {?MODULE, set}).
-define(APPS, [elixir, stdlib, kernel]).
%% Calls into these modules build their output in ordinary Erlang code, under
%% the heap limit of the process that runs them (and truncated by default):
%% a path to a sink through them does not flatten the caller's data.
-define(FORMATTERS, ['Elixir.Inspect.Algebra', 'Elixir.Inspect', 'Elixir.Exception',
                     'Elixir.IO.ANSI']).
%% Protocol dispatch reaches every implementation, those of I/O streams
%% included; the implementations themselves stay in the graph, reached from
%% wherever they are called by name.
-define(PROTOCOLS, ['Elixir.Enumerable', 'Elixir.Collectable']).
-define(CUT, ?FORMATTERS ++ ?PROTOCOLS).

%% @doc Built-ins that flatten iodata (bounded by the bytes they write).
-spec iodata_sinks() -> [mfa()].
iodata_sinks() ->
    [{erlang, iolist_to_binary, 1}, {erlang, list_to_binary, 1}, {erlang, list_to_bitstring, 1},
     {erlang, iolist_to_iovec, 1}, {erlang, iolist_size, 1}, {binary, list_to_bin, 1},
     {unicode, characters_to_binary, 1}, {unicode, characters_to_binary, 2},
     {unicode, characters_to_binary, 3}, {unicode, characters_to_list, 1},
     {unicode, characters_to_list, 2}].

%% @doc Every built-in sink: the iodata flatteners, and those that walk a
%% whole term (encode, hash, size it) without yielding.
-spec sinks() -> [mfa()].
sinks() ->
    iodata_sinks()
        ++ [{erlang, term_to_binary, 1}, {erlang, term_to_binary, 2}, {erlang, term_to_iovec, 1},
            {erlang, term_to_iovec, 2}, {erlang, external_size, 1}, {erlang, external_size, 2},
            {erlang, phash2, 1}, {erlang, phash2, 2}, {erlang, phash, 2}, {binary, copy, 2}]
        ++ copying_sinks().

%% @doc Built-ins that copy a term out of the calling process (to another
%% process, a port, a timer, an ETS table or `persistent_term'), where a too
%% large one aborts the VM (an io request to the group leader included).
-spec copying_sinks() -> [mfa()].
copying_sinks() ->
    [{erlang, send, 2}, {erlang, send, 3}, {erlang, '!', 2}, {erlang, port_command, 2},
     {erlang, port_command, 3}, {erlang, send_after, 3}, {erlang, send_after, 4},
     {erlang, start_timer, 3}, {erlang, start_timer, 4}, {erlang, exit, 2}]
        ++ [{erlang, F, A} || F <- [spawn, spawn_link, spawn_monitor], A <- [1, 2, 3, 4]]
        ++ [{erlang, spawn_opt, A} || A <- [2, 3, 4, 5]]
        ++ [{erlang, spawn_request, A} || A <- [1, 2, 3, 4, 5]]
        ++ [{ets, insert, 2}, {ets, insert_new, 2}, {persistent_term, put, 2}].

%% @doc Whether `M:F/A' is a sink or reaches one (every function is, until
%% the set is known).
-spec member(module(), atom(), arity()) -> boolean().
member(M, F, A) -> seccomp_callgraph:status(?KEY, {M, F, A}) =/= false.

%% @doc What the background derivation (`seccomp_callgraph:start_link/1')
%% derives for this module.
-spec spec() -> seccomp_callgraph:spec().
spec() -> #{key => ?KEY, apps => ?APPS, cut => ?CUT, sinks => sinks()}.

%% @doc Wait until the set is known, deriving it here if no one else is.
-spec ensure() -> ok.
ensure() -> seccomp_callgraph:ensure(spec()).

%% @doc The sinks and the exported functions that call one, directly or not.
-spec derive() -> {ok, [mfa()]} | error.
derive() -> seccomp_callgraph:derive(spec()).
