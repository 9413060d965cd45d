%% EUnit tests: the derived sets are kept in a cache file that a fresh VM
%% loads instead of deriving them again, and a damaged file is derived over.
-module(seccomp_callgraph_tests).
-include_lib("eunit/include/eunit.hrl").

-export([derive_with_cache/1]).

-include("caught.hrl").

%% Functions on both sides of every group.
-define(SAMPLE, [{'Elixir.Task', async, 1}, {'Elixir.Inspect.Opts', default_inspect_fun, 1},
                 {persistent_term, put, 2}, {erlang, binary_to_atom, 2}, {lists, sort, 1},
                 {'Elixir.String', split, 2}, {re, run, 3}, {erlang, binary_to_integer, 1}]).

cache_test_() ->
    {timeout, 120,
     fun() ->
             Dir = filename:join(os:getenv("TMPDIR", "/tmp"),
                                 "seccomp_callgraph_" ++ integer_to_list(erlang:unique_integer([positive]))),
             try
                 {Derived, Answers} = in_peer(Dir),
                 [File] = filelib:wildcard(filename:join(Dir, "callgraph-*.bin")),
                 %% A fresh VM loads the file: the same answers, without the work.
                 {Loaded, Answers} = in_peer(Dir),
                 ?assert(Loaded * 3 < Derived),
                 %% A damaged file is derived over, and rewritten.
                 {ok, Bin} = file:read_file(File),
                 ok = file:write_file(File, binary:part(Bin, 0, byte_size(Bin) div 2)),
                 {_, Answers} = in_peer(Dir),
                 {ok, Rewritten} = file:read_file(File),
                 ?assert(is_map(binary_to_term(Rewritten)))
             after
                 file:del_dir_r(Dir)
             end
     end}.

%% In a fresh VM whose cache is `Dir': how long the sets took, and what
%% they answer for the sample.
derive_with_cache(Dir) ->
    ok = application:load(beam_seccomp),
    ok = application:set_env(beam_seccomp, callgraph_cache, Dir),
    {ok, _} = application:ensure_all_started(beam_seccomp),
    T0 = erlang:monotonic_time(millisecond),
    ok = seccomp_reach:ensure(),
    Ms = erlang:monotonic_time(millisecond) - T0,
    {Ms, [{G, MFA, seccomp_reach:member(G, M, F, A)} || G <- seccomp_reach:groups(), {M, F, A} = MFA <- ?SAMPLE]}.

in_peer(Dir) ->
    Paths = lists:append([["-pa", P] || P <- code:get_path() ++ seccomp_mediation_tests:elixir_path()]),
    {ok, Peer, _} = peer:start_link(#{connection => 0, args => Paths}),
    try peer:call(Peer, ?MODULE, derive_with_cache, [Dir], 60000)
    after
        caught(fun() -> peer:stop(Peer) end)
    end.
