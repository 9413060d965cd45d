%% @doc The functions that can start a process: the spawn built-ins, and
%% every exported function of the installed kernel, stdlib and Elixir from
%% which a chain of calls reaches one, derived from the shared call graph
%% of the running code (`seccomp_callgraph').
-module(seccomp_spawners).

-export([status/3, spec/0, ensure/0, derive/0, sinks/0]).

-define(KEY, {?MODULE, set}).
-define(APPS, [elixir, stdlib, kernel]).

%% @doc The spawn built-ins.
-spec sinks() -> [mfa()].
sinks() ->
    [{erlang, F, A} || {F, A} <- erlang:module_info(exports), lists:prefix("spawn", atom_to_list(F))].

%% @doc Whether `M:F/A' can start a process; `unknown' until the set is
%% known (but for the built-ins themselves).
-spec status(module(), atom(), arity()) -> boolean() | unknown.
status(M, F, A) ->
    case seccomp_callgraph:status(?KEY, {M, F, A}) of
        unknown when M =:= erlang ->
            lists:member({erlang, F, A}, sinks()) orelse unknown;
        Known ->
            Known
    end.

%% @doc What the background derivation (`seccomp_callgraph:start_link/1')
%% derives for this module.
-spec spec() -> seccomp_callgraph:spec().
spec() -> #{key => ?KEY, apps => ?APPS, cut => [], sinks => sinks()}.

%% @doc Wait until the set is known, deriving it here if no one else is.
-spec ensure() -> ok.
ensure() -> seccomp_callgraph:ensure(spec()).

%% @doc The built-ins and the exported functions that reach one.
-spec derive() -> {ok, [mfa()]} | error.
derive() -> seccomp_callgraph:derive(spec()).
