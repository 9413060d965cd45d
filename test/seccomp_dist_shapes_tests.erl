%% EUnit tests of the message shapes the carrier refuses to every
%% destination, derived from the code that acts on them.
-module(seccomp_dist_shapes_tests).
-include_lib("eunit/include/eunit.hrl").

%% Requests a supervisor answers without changing its children.
-define(READS, [count_children, which_children, which_child, get_childspec]).

%% Every request OTP's `supervisor' and Elixir's `DynamicSupervisor' (which
%% `Task.Supervisor' calls with `start_task') handle, read from their code:
%% each that is not a read is refused, as a call and as a cast, whatever
%% its arity.
supervisor_requests_are_doors_test() ->
    ok = elixir_on_path(),
    Tags = lists:usort(lists:append([handle_call_tags(M) || M <- [supervisor, 'Elixir.DynamicSupervisor']])),
    ?assert(lists:member(start_task, Tags)),
    Caller = {self(), make_ref()},
    [begin
         Door = seccomp_dist_shapes:door({'$gen_call', Caller, {Tag, x, y}}, node()),
         Cast = seccomp_dist_shapes:door({'$gen_cast', {Tag, x}}, node()),
         case lists:member(Tag, ?READS) of
             true -> ?assertEqual({ok, ok}, {Door, Cast}, Tag);
             false -> ?assertMatch({{refused, Tag}, {refused, Tag}}, {Door, Cast}, Tag)
         end
     end || Tag <- Tags].

handle_call_tags(Module) ->
    {ok, {_, [{abstract_code, {raw_abstract_v1, Forms}}]}} = beam_lib:chunks(code:which(Module), [abstract_code]),
    [Tag || {function, _, handle_call, 3, Clauses} <- Forms,
            {clause, _, [{tuple, _, [{atom, _, Tag} | _]} | _], _, _} <- Clauses].

elixir_on_path() ->
    case code:which('Elixir.DynamicSupervisor') of
        non_existing ->
            Elixir = os:find_executable("elixir"),
            ?assertNotEqual(false, Elixir),
            Real = case file:read_link_all(Elixir) of
                       {ok, Link} -> Link;
                       {error, _} -> Elixir
                   end,
            Bin = filename:dirname(filename:absname(Real, filename:dirname(Elixir))),
            true = code:add_pathz(filename:join([filename:dirname(Bin), "lib", "elixir", "ebin"])),
            ok;
        _ ->
            ok
    end.

%% Replies that reach global's helpers go to the caller the tag's
%% reference names, with what a peer's global answers their calls; any
%% other term would reach global's catch-all, which logs the whole message
%% (kernel memory many times its size).
global_replies_are_answers_test() ->
    Ref = make_ref(),
    Peer = 'peer@host',
    Check = fun(Msg) -> seccomp_dist_shapes:check(global_name_server, Msg, Peer) end,
    Takes = fun(Msg) ->
                    {reply, Ref, T} = Check(Msg),
                    T(self())
            end,
    %% the reply tags of a call (the alias, `[alias | Alias]' and a request's
    %% `[[alias | Alias] | Label]', the replies of OTP 27+ come to the alias)
    Tags = [{Ref, Peer}, Ref, [alias | Ref], [[alias | Ref] | label]],
    %% (this process waits in no `set_lock' call)
    [?assert(Takes({T, R})) || T <- Tags, R <- [yes, ok, true, false]],
    [?assertNot(Takes({T, R})) || T <- Tags, R <- ["yes", lists:duplicate(1000, 0), {true}, {garbage}]],
    [?assertMatch({refused, _}, Check(M))
     || M <- [{{Ref, other@host}, true}, {binary_to_term(term_to_binary(Ref)), 1, 2}]
            ++ [{T, true} || T <- [[alias], [alias | self()], [[alias | 1] | label], other@host]]].
