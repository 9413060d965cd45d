%% @doc The function handler of the eval sandbox: every call that sandboxed
%% code makes arrives here, is checked against the calling process's layers,
%% and is then carried out, with extra care for the calls that could reach
%% outside (apply, funs, spawns, sends, exit signals, atoms, amplifiers,
%% protocol dispatch on forged structs).
%%
%% A process runs sandboxed code only inside `erl_eval' with this handler,
%% inside funs made by {@link wrap_fun/4}, or inside prepared code (see
%% `seccomp_compile'). The first time a process does so it joins the
%% sandbox: it takes on the sandbox's layers, counts against `max_processes',
%% gets the heap limit and is killed when the sandbox ends.
%%
%% A caller context ({@link caller/2}) serves prepared code run in the
%% caller's own process: calls are checked against the prepared policy (and
%% the caller's own layers), and whatever would change the caller's process
%% (its dictionary, flags, links, mailbox) or start processes is refused.
-module(seccomp_sandbox).

-export([elixir_internal/1, elixir_helpers/0, joined/0]).
-export([open/3, new/1, caller/2, usage/1, over_limit/2, is_member/2, handler/1, call/3, wrap_fun/4, join/1, close/1, reset/1, members/1,
         id/1, spend_atoms/2, violation/1, direct/3, direct_but_dispatch/3, dispatch/4, arith/4, field/3, begin_caller_run/0, end_caller_run/0,
         copyable/2, bounded_result/2]).

-export_type([ctx/0]).

-record(ctx, {id :: reference(),
              tab :: ets:tid() | caller,
              keeper :: pid() | none,
              ticket :: reference() | none,
              %% `none': check the process's own layers; else this policy too.
              policy :: reference() | none,
              max_processes :: non_neg_integer(),
              max_heap_size :: non_neg_integer(),
              max_binary :: non_neg_integer(),
              max_atoms :: non_neg_integer(),
              %% Bytes (words times eight plus binary bytes) a term that
              %% leaves a member or is walked in one call may flatten to.
              max_copy :: non_neg_integer(),
              send_to :: [atom() | pid()],
              %% The sandbox policy is a denylist: see namespace_denied/2.
              denylist = false :: boolean()}).

-opaque ctx() :: #ctx{}.

-define(JOINED, '$seccomp_sandbox').
%% A caller-mode run's state in the caller's dictionary: {Violation, Atoms}.
-define(CALLER_RUN, '$seccomp_caller_run').
-define(CALLER_REPORTS, '$seccomp_caller_reports').
-define(MAX_WRAPPED_ARITY, 12).
%% Violations of one run that are logged and sent to subscribers.
-define(MAX_REPORTS, 100).
%% Supervisors nested this deep under a member are the sandbox's own.
-define(MAX_OWN_DEPTH, 8).
%% Integers below this multiply without a size check.
-define(SMALL, (1 bsl 32)).

%% @doc Restrict the calling process (a sandbox's keeper) with the caller's
%% ticket and `Policy', and open a sandbox whose members carry both.
-spec open(reference() | none, seccomp_policy:t() | reference(), map()) -> ctx().
open(CallerTicket, Policy, Opts) ->
    CallerTicket =:= none orelse seccomp_nif:adopt(CallerTicket),
    ok = seccomp_nif:restrict_self(seccomp_policy:native(Policy)),
    {_, Ticket} = seccomp_nif:spawn_ticket(),
    new(Opts#{ticket => Ticket}).

%% @doc Reductions and off-heap binary bytes of the sandbox's members: what
%% `max_heap_size' does not cover.
-spec usage(ctx()) -> {non_neg_integer(), non_neg_integer()}.
usage(Ctx) ->
    lists:foldl(fun(P, {R, B}) ->
                        case erlang:process_info(P, [reductions, binary]) of
                            [{reductions, R1}, {binary, Bins}] ->
                                {R + R1, B + lists:sum([Sz || {_, Sz, _} <- Bins])};
                            undefined ->
                                {R, B}
                        end
                end, {0, 0}, members(Ctx)).

%% @doc Which limit a {@link usage/1} sample exceeds, if any (reductions
%% counted from the start of the run).
-spec over_limit({integer(), non_neg_integer()}, map()) -> ok | reduction_limit | memory_limit.
over_limit({Reds, Bin}, #{max_reductions := MaxReds, max_binary := MaxBin}) ->
    if
        Reds > MaxReds -> reduction_limit;
        Bin > MaxBin -> memory_limit;
        true -> ok
    end.

%% @doc A sandbox context. `Opts' carries the limits and the ticket of layers.
-spec new(map()) -> ctx().
new(#{keeper := Keeper, ticket := Ticket, max_processes := MaxProcs, max_heap_size := Heap,
      max_binary := Bin, max_atoms := Atoms, send_to := SendTo} = Opts) ->
    %% What its processes log must meet the log filter before any other.
    ok = seccomp_log_filter:install(),
    Tab = ets:new(seccomp_sandbox, [public, set]),
    ets:insert(Tab, [{'$count', 0}, {'$atoms', 0}]),
    #ctx{id = make_ref(), tab = Tab, keeper = Keeper, ticket = Ticket, policy = none,
         max_processes = MaxProcs, max_heap_size = Heap, max_binary = Bin, max_atoms = Atoms,
         max_copy = max_copy(Heap, Bin), send_to = SendTo, denylist = denylist(Opts)}.

%% A term no larger than one member's heap and the binary limit, unshared.
max_copy(Heap, Bin) -> 8 * Heap + Bin.

%% @doc A context for running prepared code in the caller's own process,
%% checked against `Policy' (a native policy) on top of the caller's layers.
-spec caller(reference(), map()) -> ctx().
caller(Policy, #{max_heap_size := Heap, max_binary := Bin, max_atoms := Atoms, send_to := SendTo} = Opts) ->
    #ctx{id = make_ref(), tab = caller, keeper = none, ticket = none, policy = Policy,
         max_processes = 0, max_heap_size = 0, max_binary = Bin, max_atoms = Atoms,
         max_copy = max_copy(Heap, Bin), send_to = SendTo, denylist = denylist(Opts)}.

denylist(#{policy := P}) ->
    seccomp_policy:is_policy(P) andalso maps:get(mode, seccomp_policy:spec(P), whitelist) =:= blacklist;
denylist(_Opts) ->
    false.

%% @doc Whether a term from sandboxed code may leave it (be copied to another
%% process, or walked by one uninterruptible call): its flattened cost,
%% shared subterms counted each time, is within the sandbox's bound.
-spec copyable(term(), ctx()) -> boolean().
copyable(Term, #ctx{max_copy = Max}) -> seccomp_size:within(Term, Max, term).

%% @doc A run's result as it may leave the sandbox: unchanged, or
%% `{error, memory_limit}' when its value, bindings or exception would
%% flatten beyond the bound.
-spec bounded_result(Result, ctx()) -> Result | {error, memory_limit}.
bounded_result({error, Reason} = E, _Ctx) when is_atom(Reason) -> E;
bounded_result(Result, Ctx) ->
    case copyable(Result, Ctx) of
        true -> Result;
        false -> {error, memory_limit}
    end.

%% @doc Start a caller-mode run in the calling process.
-spec begin_caller_run() -> ok.
begin_caller_run() ->
    put(?CALLER_RUN, {none, 0}),
    ok.

%% @doc End a caller-mode run: the first violation it caused, or `none'.
-spec end_caller_run() -> none | mfa().
end_caller_run() ->
    erase(?CALLER_REPORTS),
    case erase(?CALLER_RUN) of
        {Violation, _Atoms} -> Violation;
        undefined -> none
    end.

%% @doc The first violation any member caused since the last reset, or `none'.
-spec violation(ctx()) -> none | mfa().
violation(#ctx{tab = Tab}) ->
    try ets:lookup(Tab, '$violation') of
        [{_, MFA}] -> MFA;
        [] -> none
    catch
        error:badarg -> none
    end.

%% @doc Make a sandbox ready for its next run (prepared code in a warm
%% process): kill every member but the caller, and clear the counters, the
%% recorded violation and the caller's dictionary.
-spec reset(ctx()) -> ok.
reset(#ctx{tab = Tab} = Ctx) ->
    Me = self(),
    Member = ets:member(Tab, Me),
    Count = case Member of true -> 1; false -> 0 end,
    case ets:lookup(Tab, '$count') of
        [{_, Count}] -> ok;
        _ ->
            [begin exit(P, kill), ets:delete(Tab, P) end || P <- members(Ctx), P =/= Me],
            ets:insert(Tab, {'$count', Count})
    end,
    ets:insert(Tab, {'$atoms', 0}),
    ets:delete(Tab, '$violation'),
    ets:delete(Tab, '$reports'),
    Member andalso clear_dictionary(),
    ok.

clear_dictionary() ->
    case get() of
        [{?JOINED, _}] -> true;
        _ ->
            Id = get(?JOINED),
            _ = erase(),
            put(?JOINED, Id),
            true
    end.

%% @doc Whether compiled code may call `M:F/A' directly once the policy
%% allows it: true when the handler would do nothing but call it.
-spec direct(module(), atom(), arity()) -> boolean().
direct(M, F, A) ->
    ordinary(M, F, A) andalso seccomp_profiles:kind(M, F, A) =:= plain
        andalso not seccomp_flatteners:member(M, F, A)
        andalso not seccomp_profiles:compares_terms(M, F)
        andalso not lists:any(fun(G) -> seccomp_reach:member(G, M, F, A) end, seccomp_reach:groups()).

%% @doc Whether the handler's only work for `M:F/A', once allowed, is the
%% forged-struct scan of {@link dispatch/4}.
-spec direct_but_dispatch(module(), atom(), arity()) -> boolean().
direct_but_dispatch(M, F, A) ->
    ordinary(M, F, A) andalso seccomp_profiles:kind(M, F, A) =:= dispatch.

ordinary(M, F, A) ->
    not special_call(M, F, A) andalso not caller_forbidden(M, F, A)
        andalso not seccomp_prepared:is_slot(M) andalso not elixir_internal(M).

%% @doc An allowed call into code that may run what its arguments name:
%% carried out once the arguments name nothing outside the policy (see
%% {@link no_foreign_code/3}).
-spec dispatch(module(), atom(), list(), ctx()) -> term().
dispatch(M, F, Args, Ctx) ->
    %% First: the scan for foreign code walks the arguments flattened.
    bounded_work(M, F, Args, Ctx),
    no_foreign_code({M, F, length(Args)}, Args, Ctx),
    counting_atoms(M, F, Args, Ctx).

%% Until the functions that can make atoms of data are known (they are
%% derived at start, see `seccomp_reach'), the atoms the VM gains during a
%% call count against `max_atoms', and the arguments must be too small to
%% take the atom table past three quarters even if every byte became an
%% atom. Once they are known they are refused (`seccomp_profiles:kind/3').
counting_atoms(M, F, Args, Ctx) ->
    case seccomp_reach:status(atoms, M, F, length(Args)) of
        unknown ->
            Before = erlang:system_info(atom_count),
            Room = erlang:system_info(atom_limit) div 4 * 3 - Before,
            seccomp_size:within(Args, max(0, Room), iodata) orelse limit(atom_limit, Ctx),
            try
                erlang:apply(M, F, Args)
            after
                spend_atoms_made(erlang:system_info(atom_count) - Before, Ctx)
            end;
        _ ->
            erlang:apply(M, F, Args)
    end.

%% The flattened arguments of a flattener, and the worst-case work of a call
%% whose cost grows faster than its input (see `seccomp_cost').
bounded_work(M, F, Args, #ctx{max_binary = Max} = Ctx) ->
    %% A flattener's arguments are bounded whole: nothing more to compare.
    flattener_args(M, F, Args, Ctx) orelse compared_args(M, F, Args, Ctx),
    seccomp_cost:within(M, F, Args, Max) orelse memory_limit(Ctx).

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

%% A call that may flatten or walk its arguments in one uninterruptible
%% step gets only arguments within the copy bound.
flattener_args(M, F, Args, Ctx) ->
    seccomp_flatteners:member(M, F, length(Args)) andalso bounded_args(Args, Ctx).

bounded_args(Args, Ctx) ->
    copyable(Args, Ctx) orelse memory_limit(Ctx).

special_call(M, apply, A) when M =:= erlang; M =:= 'Elixir.Kernel' -> A =:= 2 orelse A =:= 3;
special_call(erlang, make_fun, 3) -> true;
special_call('Elixir.Function', capture, 3) -> true;
special_call(_M, _F, _A) -> false.

%% What would change the process that runs caller-mode code.
caller_forbidden(erlang, F, _A) ->
    lists:member(F, [get, put, erase, get_keys, process_flag, link, unlink, monitor, demonitor,
                     register, unregister, group_leader, spawn_link, spawn_monitor, spawn_opt,
                     send_after, start_timer, cancel_timer, process_info, garbage_collect,
                     hibernate, suspend_process, resume_process]);
caller_forbidden('Elixir.Process', _F, _A) -> true;
caller_forbidden('Elixir.Kernel', F, _A) -> lists:member(F, [spawn_link, spawn_monitor]);
caller_forbidden(_M, _F, _A) -> false.

%% @doc Count atoms the source itself created against `max_atoms'.
-spec spend_atoms(ctx(), non_neg_integer()) -> ok.
spend_atoms(#ctx{tab = Tab}, N) ->
    _ = ets:update_counter(Tab, '$atoms', N),
    ok.

-spec id(ctx()) -> reference().
id(#ctx{id = Id}) -> Id.

%% @doc The non-local function handler for `erl_eval'.
-spec handler(ctx()) -> {value, fun((term(), [term()]) -> term())}.
handler(Ctx) -> {value, fun(FunSpec, Args) -> call(FunSpec, Args, Ctx) end}.

%% @doc Whether `Pid' joined the sandbox since its last reset.
-spec is_member(ctx(), pid()) -> boolean().
is_member(#ctx{tab = Tab}, Pid) ->
    try ets:member(Tab, Pid) catch error:badarg -> false end.

%% @doc Processes that joined the sandbox (alive or not).
-spec members(ctx()) -> [pid()].
members(#ctx{tab = Tab}) ->
    try ets:select(Tab, [{{'$1'}, [{is_pid, '$1'}], ['$1']}])
    catch error:badarg -> []
    end.

%% @doc End the sandbox: refuse new members, kill every member, drop the table.
-spec close(ctx()) -> ok.
close(#ctx{tab = Tab} = Ctx) ->
    try ets:insert(Tab, {'$closed'}) catch error:badarg -> ok end,
    Me = self(),
    [exit(P, kill) || P <- members(Ctx), P =/= Me],
    try ets:delete(Tab) catch error:badarg -> ok end,
    ok.

%% @doc Whether the calling process joined a sandbox.
-spec joined() -> boolean().
joined() -> get(?JOINED) =/= undefined.

%% @doc Make the calling process a member of the sandbox (once).
-spec join(ctx()) -> ok.
join(#ctx{tab = caller}) ->
    ok;
join(#ctx{id = Id} = Ctx) ->
    case get(?JOINED) of
        Id -> ok;
        _ -> enrol(Ctx)
    end.

enrol(#ctx{id = Id, tab = Tab, ticket = Ticket, max_heap_size = Heap} = Ctx) ->
    %% Register first, then look for the closed mark: close/1 does the opposite,
    %% so a process either sees the mark or is seen (and killed) by close/1.
    try
        register_member(self(), Ctx),
        [] =:= ets:lookup(Tab, '$closed') orelse exit(sandbox_closed)
    catch
        error:badarg -> erlang:error(sandbox_closed)
    end,
    Ticket =:= none orelse seccomp_nif:adopt(Ticket),
    _ = process_flag(max_heap_size, #{size => Heap, kill => true, error_logger => false}),
    put(?JOINED, Id),
    ok.

%% Count a process once, whether its parent registered it or it joined itself.
register_member(Pid, #ctx{tab = Tab, max_processes = Max} = Ctx) ->
    case ets:insert_new(Tab, {Pid}) of
        false -> ok;
        true ->
            case ets:update_counter(Tab, '$count', 1) of
                N when N > Max -> limit(process_limit, Ctx);
                _ -> ok
            end
    end.

-spec limit(atom(), ctx()) -> no_return().
limit(Limit, #ctx{keeper = none}) ->
    erlang:error(Limit);
limit(Limit, #ctx{keeper = Keeper, id = Id}) ->
    Keeper ! {seccomp_limit, Id, Limit, self()},
    erlang:error(Limit).

%%% The handler ---------------------------------------------------------------

%% @doc Carry out one call from sandboxed code.
-spec call(term(), [term()], ctx()) -> term().
call({'$seccomp', enter}, [], Ctx) ->
    join(Ctx);
call({'$seccomp', size}, [Size, Unit], Ctx) ->
    join(Ctx),
    bounded_size(Size, Unit, Ctx);
call({'$seccomp', key}, [Key], Ctx) ->
    join(Ctx),
    bounded_args([Key], Ctx),
    Key;
call({'$seccomp', make_fun}, [M, F, A], Ctx) ->
    join(Ctx),
    wrap_fun(M, F, A, Ctx);
call({M, F}, Args, Ctx) when is_atom(M), is_atom(F) ->
    join(Ctx),
    checked(M, F, Args, Ctx);
call(Fun, Args, Ctx) when is_function(Fun), is_list(Args) ->
    join(Ctx),
    call_fun(Fun, Args, Ctx);
call(Other, Args, _Ctx) ->
    erlang:error({badfun, Other}, [Args]).

call_fun(Fun, Args, Ctx) ->
    {module, M} = erlang:fun_info(Fun, module),
    case M =:= erl_eval orelse M =:= ?MODULE orelse seccomp_prepared:is_slot(M) of
        %% Interpreted funs, our own wrappers and prepared code check their own calls.
        true -> erlang:apply(Fun, Args);
        false ->
            case erlang:fun_info(Fun, type) of
                {type, external} ->
                    {name, F} = erlang:fun_info(Fun, name),
                    checked(M, F, Args, Ctx);
                {type, local} ->
                    %% A closure of compiled module M: a call into M.
                    {name, F} = erlang:fun_info(Fun, name),
                    guarded(M, F, length(Args), fun() -> erlang:apply(Fun, Args) end, Ctx)
            end
    end.

checked(M, F, Args, Ctx) ->
    Arity = length(Args),
    refused_here(M, F, Arity, Ctx) andalso deny({M, F, Arity}, Ctx),
    case elixir_internal(M) of
        true -> elixir_helper(M, F, Args, Ctx);
        false -> guarded(M, F, Arity, fun() -> special(M, F, Args, Ctx) end, Ctx)
    end.

%%% Runtime helpers of the Elixir compiler ------------------------------------

%% @doc Whether `M' is one of the Elixir compiler's own modules (`elixir',
%% `elixir_*': the `elixir' application's modules outside the `Elixir.'
%% namespace). Newer Elixir compiles some user code to calls of them.
-spec elixir_internal(module()) -> boolean().
elixir_internal(M) ->
    Key = {?MODULE, elixir_internal},
    Internal = case persistent_term:get(Key, undefined) of
                   undefined ->
                       _ = application:load(elixir),
                       Mods = case application:get_key(elixir, modules) of
                                  {ok, Ms} -> Ms;
                                  undefined -> []
                              end,
                       Set = maps:from_list([{X, true} || X <- Mods,
                                                          not lists:prefix("Elixir.", atom_to_list(X))]),
                       persistent_term:put(Key, Set),
                       Set;
                   Set ->
                       Set
               end,
    is_map_key(M, Internal).

%% @doc The compiler helpers the handler carries out itself. A call of any
%% other function of the compiler's modules is refused, whatever the policy:
%% they run code (`apply') on their own.
-spec elixir_helpers() -> [mfa()].
elixir_helpers() ->
    [{elixir_erl_pass, no_parens_remote, 2}, {elixir_erl_pass, parens_map_field, 2}].

%% `m.f' without parentheses (Elixir 1.17+), when `m' is not a map: a
%% checked call of `m:f()'.
elixir_helper(elixir_erl_pass, no_parens_remote, [M, F], Ctx) when is_atom(M), is_atom(F) ->
    case M =:= nil orelse M =:= true orelse M =:= false of
        true -> error;
        false -> {ok, call({M, F}, [], Ctx)}
    end;
elixir_helper(elixir_erl_pass, no_parens_remote, [_Other, _F], _Ctx) ->
    error;
%% `map.field()' with parentheses: the field's value (Elixir only warns).
elixir_helper(elixir_erl_pass, parens_map_field, [_Key, Value], _Ctx) ->
    Value;
elixir_helper(M, F, Args, Ctx) ->
    deny({M, F, length(Args)}, Ctx).

%% Prepared code must not be entered with a forged context, whatever the policy.
refused_here(M, F, A, #ctx{tab = caller}) -> caller_forbidden(M, F, A) orelse seccomp_prepared:is_slot(M);
refused_here(M, _F, _A, _Ctx) -> seccomp_prepared:is_slot(M).

guarded(M, F, Arity, Proceed, Ctx) ->
    case allowed(M, F, Arity, Ctx) of
        allow -> Proceed();
        {deny, Action} -> violation(Action, {M, F, Arity}, Proceed, Ctx)
    end.

allowed(M, F, Arity, #ctx{policy = none}) -> seccomp_nif:check(M, F, Arity);
allowed(M, F, Arity, #ctx{policy = Policy}) -> seccomp_nif:check_with(Policy, M, F, Arity).

violation(Action, MFA, Proceed, Ctx) ->
    %% Sticky: the run reports the violation even if the code catches it.
    Action =:= log orelse record_violation(MFA, Ctx),
    case Action =:= log orelse Action =:= error of
        true ->
            case reported(Ctx) of
                true -> seccomp_violation:handle(Action, MFA, Proceed);
                false when Action =:= log -> Proceed();
                false -> erlang:error({seccomp_violation, MFA})
            end;
        false ->
            seccomp_violation:handle(Action, MFA, Proceed)
    end.

-spec deny(mfa(), ctx()) -> no_return().
deny(MFA, Ctx) ->
    record_violation(MFA, Ctx),
    case reported(Ctx) of
        true -> seccomp_violation:refuse(MFA);
        false -> erlang:error({seccomp_violation, MFA})
    end.

%% Whether a violation is still logged and sent to subscribers: at most
%% ?MAX_REPORTS per run, so a loop of caught violations cannot flood the
%% host's log (the run's result still names the first one).
reported(#ctx{tab = caller}) ->
    N = case get(?CALLER_REPORTS) of undefined -> 0; K -> K end,
    put(?CALLER_REPORTS, N + 1),
    N < ?MAX_REPORTS;
reported(#ctx{tab = Tab}) ->
    try ets:update_counter(Tab, '$reports', 1, {'$reports', 0}) =< ?MAX_REPORTS
    catch error:badarg -> false
    end.

record_violation(MFA, #ctx{tab = caller}) ->
    case get(?CALLER_RUN) of
        {none, Atoms} -> put(?CALLER_RUN, {MFA, Atoms});
        _ -> ok
    end;
record_violation(MFA, #ctx{tab = Tab}) ->
    try ets:insert_new(Tab, {'$violation', MFA}) catch error:badarg -> false end.

%%% Calls that need more than a policy check -----------------------------------

special(erlang, apply, [M, F, As], Ctx) -> apply3(M, F, As, Ctx);
special('Elixir.Kernel', apply, [M, F, As], Ctx) -> apply3(M, F, As, Ctx);
special(erlang, apply, [Fun, As], Ctx) -> call(Fun, As, Ctx);
special('Elixir.Kernel', apply, [Fun, As], Ctx) -> call(Fun, As, Ctx);
special(erlang, make_fun, [M, F, A], Ctx) -> wrap_fun(M, F, A, Ctx);
special('Elixir.Function', capture, [M, F, A], Ctx) -> wrap_fun(M, F, A, Ctx);
special(M, F, Args, Ctx) ->
    case seccomp_profiles:kind(M, F, length(Args)) of
        plain ->
            bounded_work(M, F, Args, Ctx),
            counting_atoms(M, F, Args, Ctx);
        dispatch ->
            dispatch(M, F, Args, Ctx);
        Kind ->
            flattener_args(M, F, Args, Ctx),
            special_kind(Kind, M, F, Args, Ctx)
    end.

apply3(M, F, As, Ctx) when is_atom(M), is_atom(F), is_list(As) -> call({M, F}, As, Ctx);
apply3(M, F, As, _Ctx) -> erlang:error(badarg, [M, F, As]).

special_kind(Kind, M, F, Args, #ctx{tab = caller} = Ctx)
  when Kind =:= routed; Kind =:= spawn_fun; Kind =:= spawn_mfa; Kind =:= spawner ->
    %% Caller mode has no sandbox to hold processes, and routed calls would
    %% run under the caller's layers alone.
    deny({M, F, length(Args)}, Ctx);
special_kind(atom, M, F, Args, Ctx) ->
    new_atom(M, F, Args, Ctx);
special_kind(Kind, M, F, Args, Ctx) when Kind =:= routed; Kind =:= spawner; element(1, Kind) =:= send;
                                        element(1, Kind) =:= signal ->
    %% Each of these copies its arguments to another process.
    bounded_args(Args, Ctx),
    copying_kind(Kind, M, F, Args, Ctx);
special_kind(spawn_fun, M, F, [Fun | Rest] = Args, Ctx) ->
    bounded_args(Args, Ctx),
    spawn_checked(M, F, [joining(Fun, Ctx) | Rest], Ctx);
special_kind(spawn_mfa, M, F, [Mod, Fun, As | Rest] = Args, Ctx) ->
    bounded_args(Args, Ctx),
    is_atom(Mod) andalso is_atom(Fun) andalso is_list(As) orelse erlang:error(badarg, Args),
    %% The child's first call is itself checked: spawn a joining fun instead.
    %% Every spawner with an `M, F, A' form also has a fun form of the same name.
    Start = joining(fun() -> call({Mod, Fun}, As, Ctx) end, Ctx),
    spawn_checked(M, F, [Start | Rest], Ctx);
special_kind(agent_mfa, M, F, [Agent, Mod, Fun, As | Rest] = Args, Ctx) ->
    bounded_args(Args, Ctx),
    is_atom(Mod) andalso is_atom(Fun) andalso is_list(As) orelse erlang:error(badarg, Args),
    may_signal(Agent, {M, F, length(Args)}, signal, Ctx),
    %% The agent applies `Mod:Fun' to its state: through the handler, so the
    %% state is checked like any other argument.
    erlang:apply(M, F, [Agent, fun(State) -> call({Mod, Fun}, [State | As], Ctx) end | Rest]);
special_kind(info, M, F, [Pid | Items] = Args, Ctx) ->
    MFA = {M, F, length(Args)},
    is_pid(Pid) andalso (Pid =:= self() orelse is_member(Ctx, Pid)) orelse deny(MFA, Ctx),
    case Items of
        [] -> deny(MFA, Ctx);
        [Item] ->
            Requested = case is_list(Item) of true -> Item; false -> [Item] end,
            lists:any(fun private_info/1, Requested) andalso deny(MFA, Ctx),
            erlang:apply(M, F, Args)
    end;
special_kind(refused, M, F, Args, Ctx) ->
    deny({M, F, length(Args)}, Ctx);
special_kind(output, M, F, Args, Ctx) ->
    bounded_args(Args, Ctx),
    Convert = fun(Mod, Fun, As) -> call({Mod, Fun}, As, Ctx) end,
    case seccomp_output:print({M, F, Args}, output_device(Ctx), Convert) of
        {ok, Value} -> Value;
        refused -> deny({M, F, length(Args)}, Ctx)
    end;
special_kind(decode, M, F, [Bin | Opts] = Args, Ctx) ->
    %% A decoded fun would run its code unchecked wherever it is called;
    %% `safe' refuses atoms the VM does not know (they would escape the
    %% atom budget).
    Safe = case Opts of
               [] -> [safe];
               [L] when is_list(L) -> [safe | L];
               [Other] -> erlang:error(badarg, [Bin, Other])
           end,
    Term = erlang:apply(M, F, [Bin, Safe]),
    holds_fun([Term]) andalso deny({M, F, length(Args)}, Ctx),
    Term;
special_kind({amplifier, CountPos, UnitPos}, M, F, Args, #ctx{max_binary = Max} = Ctx) ->
    Unit = case UnitPos of
               none -> 8;
               _ -> unit_size(lists:nth(UnitPos, Args), Max)
           end,
    bounded_bytes(lists:nth(CountPos, Args), Unit, Ctx),
    carry_out(M, F, Args, Ctx);
special_kind({bignum, _Class} = Kind, M, F, Args, Ctx) ->
    bounded_integer(Kind, Args, Ctx),
    carry_out(M, F, Args, Ctx);
special_kind(compare, M, F, [X, Y] = Args, Ctx) ->
    %% A comparison stops at the smaller operand's end.
    copyable(X, Ctx) orelse copyable(Y, Ctx) orelse memory_limit(Ctx),
    erlang:apply(M, F, Args);
special_kind({iodata, Pos}, M, F, Args, #ctx{max_binary = Max} = Ctx) ->
    seccomp_size:within(lists:nth(Pos, Args), Max, iodata) orelse memory_limit(Ctx),
    erlang:apply(M, F, Args).

copying_kind(routed, M, F, [Sup | _] = Args, Ctx) when M =/= rpc, M =/= erpc, M =/= 'Elixir.Node' ->
    %% A supervisor starts what it is asked to: only the sandbox's own
    %% supervisors may be asked, and those the caller listed in `send_to'.
    own_process(Sup, Ctx) orelse lists:member(Sup, Ctx#ctx.send_to) orelse deny({M, F, length(Args)}, Ctx),
    seccomp_route:call(M, F, Args);
copying_kind(routed, M, F, Args, _Ctx) ->
    seccomp_route:call(M, F, Args);
copying_kind(spawner, M, F, Args, Ctx) ->
    %% Task, Agent, proc_lib...: the child joins at its first sandboxed call.
    below_process_limit(Ctx),
    dispatch(M, F, Args, Ctx);
copying_kind({send, DestPos}, M, F, Args, Ctx) ->
    may_signal(lists:nth(DestPos, Args), {M, F, length(Args)}, send, Ctx),
    carry_out(M, F, Args, Ctx);
copying_kind({signal, DestPos}, M, F, Args, Ctx) ->
    may_signal(lists:nth(DestPos, Args), {M, F, length(Args)}, signal, Ctx),
    carry_out(M, F, Args, Ctx).

%% The last step of a special kind: modules that may apply data get their
%% arguments checked too.
carry_out(M, F, Args, Ctx) ->
    case M =:= erlang orelse seccomp_profiles:applies_no_data(M) of
        true -> erlang:apply(M, F, Args);
        false -> dispatch(M, F, Args, Ctx)
    end.

%% The child's exit reason is copied to every process linked to or
%% monitoring it: one too large to copy becomes `memory_limit'. The child
%% ends with an exit, never an error: the VM logs an error with its stack,
%% and the host's logger would format the sandbox's data. The reason is
%% what the VM would give (`{Reason, Stack}'), made inert.
joining(Fun, Ctx) when is_function(Fun, 0) ->
    fun() ->
            join(Ctx),
            try Fun()
            catch Class:Reason:Stack ->
                    %% An error's stack (with a clause's arguments) is part of the reason.
                    copyable({Reason, Stack}, Ctx) orelse exit(memory_limit),
                    exit(exit_reason(Class, Reason, Stack))
            end
    end;
joining(Other, _Ctx) -> erlang:error(badarg, [Other]).

exit_reason(exit, Reason, _Stack) -> seccomp_inert:term(Reason);
exit_reason(error, Reason, Stack) -> {seccomp_inert:term(Reason), seccomp_inert:stack(Stack)};
exit_reason(throw, Reason, Stack) -> {{nocatch, seccomp_inert:term(Reason)}, seccomp_inert:stack(Stack)}.

%% Where printing goes: the group leader when it is an output capture (the
%% sandbox's), nowhere in caller mode or otherwise.
output_device(#ctx{tab = caller}) -> discard;
output_device(_Ctx) ->
    GL = group_leader(),
    case erlang:process_info(GL, initial_call) of
        {initial_call, Call} ->
            case seccomp_capture:is_initial_call(Call) of
                true -> GL;
                false -> discard
            end;
        undefined -> discard
    end.

%% A member, or a process a member started (a supervisor runs no sandboxed
%% code, so it never joins): its parent, or theirs, is a member.
own_process(Name, Ctx) when is_atom(Name) -> own_process(erlang:whereis(Name), Ctx);
own_process(Pid, Ctx) -> own_process(Pid, Ctx, ?MAX_OWN_DEPTH).

own_process(Pid, Ctx, Depth) when is_pid(Pid), node(Pid) =:= node(), Depth > 0 ->
    is_member(Ctx, Pid) orelse
        case erlang:process_info(Pid, parent) of
            {parent, Parent} -> own_process(Parent, Ctx, Depth - 1);
            undefined -> false
        end;
own_process(_Other, _Ctx, _Depth) ->
    false.

%% Process information that shows the runner's keeper (links, parent,
%% monitors), what the library keeps in the process (dictionary, stack), or
%% other processes (monitored_by).
private_info(Item) ->
    lists:member(Item, [links, monitors, monitored_by, parent, dictionary, backtrace,
                        current_stacktrace, messages, group_leader]).

%% The child is a member from birth, so the parent may message it at once.
spawn_checked(M, F, Args, Ctx) ->
    below_process_limit(Ctx),
    Started = erlang:apply(M, F, Args),
    case seccomp_supervisor:started_pid(Started) of
        undefined -> ok;
        Pid -> register_member(Pid, Ctx)
    end,
    Started.

below_process_limit(#ctx{tab = Tab, max_processes = Max} = Ctx) ->
    case ets:lookup(Tab, '$count') of
        [{_, N}] when N < Max -> ok;
        _ -> limit(process_limit, Ctx)
    end.

%% Messages and exit signals may only reach the sandbox's own processes, and
%% the registered names the caller listed in `send_to'.
may_signal(Dest, MFA, Kind, #ctx{tab = caller, send_to = SendTo} = Ctx) ->
    Kind =:= send andalso lists:member(Dest, SendTo) orelse deny(MFA, Ctx);
may_signal(Dest, MFA, Kind, #ctx{tab = Tab, send_to = SendTo} = Ctx) ->
    Allowed = case Dest of
                  Pid when is_pid(Pid) ->
                      Pid =:= self() orelse ets:member(Tab, Pid)
                          orelse (Kind =:= send andalso lists:member(Pid, SendTo));
                  Name when is_atom(Name), Kind =:= send -> lists:member(Name, SendTo);
                  _ -> false
              end,
    Allowed orelse deny(MFA, Ctx).

%%% Atoms, sizes and amplifiers ---------------------------------------------------

new_atom(M, F, Args, Ctx) ->
    Text = case Args of
               [B | _] when is_binary(B) -> B;
               [L | _] when is_list(L) -> L;
               _ -> erlang:error(badarg, Args)
           end,
    Existing = try existing_atom(Text) catch error:badarg -> none end,
    case Existing of
        none ->
            spend_atom(Ctx),
            erlang:apply(M, F, Args);
        Atom ->
            Atom
    end.

spend_atom(Ctx) -> spend_atoms_made(1, Ctx).

spend_atoms_made(K, _Ctx) when K =< 0 ->
    ok;
spend_atoms_made(K, #ctx{tab = caller, max_atoms = Max} = Ctx) ->
    case get(?CALLER_RUN) of
        {Violation, N} when N + K =< Max -> put(?CALLER_RUN, {Violation, N + K});
        _ -> limit(atom_limit, Ctx)
    end;
spend_atoms_made(K, #ctx{tab = Tab, max_atoms = Max} = Ctx) ->
    case ets:update_counter(Tab, '$atoms', K) of
        N when N > Max -> limit(atom_limit, Ctx);
        _ -> ok
    end.

existing_atom(B) when is_binary(B) -> binary_to_existing_atom(B, utf8);
existing_atom(L) -> list_to_existing_atom(L).

bounded_size(Size, Unit, #ctx{max_binary = Max} = Ctx) when is_integer(Size), is_integer(Unit) ->
    case Size * Unit =< Max * 8 of
        true -> Size;
        false -> memory_limit(Ctx)
    end;
bounded_size(Size, _Unit, _Ctx) ->
    Size.

%% @doc Elixir's `var.field' in prepared code: the field of a map, or a
%% checked zero-arity call of the module an atom names.
-spec field(term(), atom(), ctx()) -> term().
field(#{} = Map, F, _Ctx) ->
    case Map of
        #{F := V} -> V;
        _ -> erlang:error({badkey, F, Map})
    end;
field(M, F, Ctx) when is_atom(M), M =/= nil, M =/= true, M =/= false ->
    call({M, F}, [], Ctx);
field(X, F, _Ctx) ->
    erlang:error({badkey, F, X}).

%% @doc Integer arithmetic in prepared code whose policy allows it (`*',
%% `bsl', `div', `rem'): floats and small integers directly, larger
%% integers within the bignum bound.
-spec arith('*' | 'bsl' | 'div' | 'rem', number(), number(), ctx()) -> number().
arith('*', X, Y, _Ctx) when is_float(X); is_float(Y) -> X * Y;
arith('*', X, Y, _Ctx) when is_integer(X), is_integer(Y), abs(X) < ?SMALL, abs(Y) < ?SMALL -> X * Y;
arith('bsl', X, Y, _Ctx) when is_integer(X), is_integer(Y), abs(X) < ?SMALL, Y =< 64 -> X bsl Y;
arith(Op, X, Y, _Ctx) when (Op =:= 'div' orelse Op =:= 'rem'), abs(Y) < ?SMALL -> erlang:Op(X, Y);
arith(Op, X, Y, Ctx) ->
    bounded_integer({bignum, seccomp_profiles:bignum_class(erlang, Op, 2)}, [X, Y], Ctx),
    erlang:Op(X, Y).

%% Bignum arithmetic and conversions run inside one BIF call that neither
%% yields nor lets the process be killed: the operands' sizes decide how
%% long, so they are capped (see `seccomp_cost').
bounded_integer({bignum, Class}, Args, Ctx) ->
    seccomp_cost:integer_op(Class, Args) orelse memory_limit(Ctx).

%% `Count' copies of something of `Unit' bytes (a word, for terms).
bounded_bytes(Count, Unit, #ctx{max_binary = Max} = Ctx) when is_integer(Count), Count * Unit > Max ->
    memory_limit(Ctx);
bounded_bytes(_Count, _Unit, _Ctx) ->
    ok.

unit_size(B, _Max) when is_binary(B) -> max(1, byte_size(B));
unit_size(L, Max) when is_list(L) ->
    %% Past `Max' the exact size does not matter: the walk stops there.
    case seccomp_size:cost(L, Max, iodata) of
        over -> Max + 1;
        N -> max(1, N)
    end;
unit_size(_, _Max) -> 8.

-spec memory_limit(ctx()) -> no_return().
memory_limit(Ctx) -> limit(memory_limit, Ctx).

%% Library code applies what data names: a struct's module (protocols,
%% Access), a module handed over as a callback (`Enum.sort(L, Mod)'), a
%% struct's module-valued field (`calendar'), `{M, F, A}' tuples, and it
%% messages the processes data names. Before such code runs:
%% <ul>
%% <li>a struct's module must be allowed;</li>
%% <li>an atom that names a module, as an argument, in a tuple (but for the
%%     key of a pair) or as a struct's field, must name one whose every
%%     function the policy allows and the handler would merely call;</li>
%% <li>a registered name as an argument must be one the code may send to,
%%     and every pid a member of the sandbox (or in `send_to'); no ports.</li>
%% </ul>
-spec no_foreign_code(mfa(), list(), ctx()) -> ok.
no_foreign_code(MFA, Args, Ctx) ->
    lists:foreach(fun(A) when is_atom(A) -> named(A, MFA, Ctx), registered(A, MFA, Ctx);
                     (_) -> ok
                  end, Args),
    scan([Args], MFA, Ctx).

scan([], _MFA, _Ctx) -> ok;
scan([T | Rest], MFA, Ctx) when is_list(T) -> scan_list(T, Rest, MFA, Ctx);
scan([T | Rest], MFA, Ctx) when is_tuple(T) ->
    Items = case T of
                {Key, Value} when is_atom(Key) -> [Value];
                %% `{M, F, Arity}' describes a function (`%Task{mfa: ...}',
                %% stack traces); what is applied has a list of arguments.
                {_M, _F, Arity} when is_integer(Arity) -> [];
                _ -> tuple_to_list(T)
            end,
    named_all(Items, MFA, Ctx),
    scan_list(tuple_to_list(T), Rest, MFA, Ctx);
scan([T | Rest], MFA, Ctx) when is_map(T) ->
    case T of
        #{'__struct__' := S} when is_atom(S) ->
            case allowed(S, '__struct__', 0, Ctx) of
                allow -> namespace_denied(S, Ctx) andalso deny({S, '__struct__', 0}, Ctx);
                {deny, _} -> deny({S, '__struct__', 0}, Ctx)
            end,
            named_all([V || V <- maps:values(T), V =/= S], MFA, Ctx);
        _ -> ok
    end,
    scan_list(maps:keys(T), [maps:values(T) | Rest], MFA, Ctx);
scan([T | Rest], MFA, Ctx) when is_pid(T); is_port(T) ->
    member_process(T, MFA, Ctx),
    scan(Rest, MFA, Ctx);
scan([T | Rest], MFA, Ctx) when is_integer(T) ->
    %% Library code prints, parses and divides integers without yielding.
    seccomp_cost:integer_op(operand, [T]) orelse memory_limit(Ctx),
    scan(Rest, MFA, Ctx);
scan([_ | Rest], MFA, Ctx) -> scan(Rest, MFA, Ctx).

%% Under a denylist, denying a module denies its namespace's structs too:
%% `File.Stream''s protocol implementations are `File''s code, called
%% directly. (Under an allowlist the struct's module itself had to be named.)
namespace_denied(_S, #ctx{denylist = false}) ->
    false;
namespace_denied(S, Ctx) ->
    case binary:split(atom_to_binary(S, utf8), <<".">>, [global]) of
        [<<"Elixir">> | Segments] when length(Segments) > 1 ->
            Parents = tl(lists:foldl(fun(Seg, [])  -> [[<<"Elixir.">>, Seg]];
                                                    (Seg, [P | _] = Acc) -> [[P, $., Seg] | Acc]
                                                 end, [], Segments)),
            lists:any(fun(P) ->
                              case catch_existing(iolist_to_binary(P)) of
                                  none -> false;
                                  M -> allowed(M, '__info__', 1, Ctx) =/= allow
                              end
                      end, Parents);
        _ ->
            false
    end.

catch_existing(Name) ->
    try binary_to_existing_atom(Name, utf8) catch error:badarg -> none end.

%% Walk a (possibly improper) list, pushing onto the work list only the items
%% that can hold a map or a process, or are bignums: a list of numbers or a string costs one
%% test per item.
scan_list([H | T], Rest, MFA, Ctx) when is_list(H); is_tuple(H); is_map(H); is_pid(H); is_port(H);
                                         is_integer(H), (H > ?SMALL orelse H < -?SMALL) ->
    scan_list(T, [H | Rest], MFA, Ctx);
scan_list([_ | T], Rest, MFA, Ctx) -> scan_list(T, Rest, MFA, Ctx);
scan_list([], Rest, MFA, Ctx) -> scan(Rest, MFA, Ctx);
scan_list(Tail, Rest, MFA, Ctx) -> scan([Tail | Rest], MFA, Ctx).

member_process(Pid, MFA, #ctx{tab = Tab, send_to = SendTo} = Ctx) when is_pid(Pid) ->
    Pid =:= self() andalso Tab =/= caller
        orelse (Tab =/= caller andalso is_member(Ctx, Pid))
        orelse lists:member(Pid, SendTo)
        orelse deny(MFA, Ctx);
member_process(_Port, MFA, Ctx) ->
    deny(MFA, Ctx).

registered(Name, MFA, #ctx{send_to = SendTo} = Ctx) ->
    erlang:whereis(Name) =:= undefined orelse lists:member(Name, SendTo) orelse deny(MFA, Ctx).

named_all(Items, MFA, Ctx) ->
    lists:foreach(fun(A) when is_atom(A) -> named(A, MFA, Ctx);
                     (_) -> ok
                  end, Items).

%% An atom that names a module (loaded or on the code path) may be handed to
%% library code only if every function of that module is allowed and plain.
named(A, _MFA, _Ctx) when A =:= true; A =:= false; A =:= nil; A =:= undefined; A =:= ok; A =:= error ->
    ok;
named(A, _MFA, Ctx) ->
    case erlang:module_loaded(A) orelse loadable(A, Ctx) of
        true ->
            case [MFA || {F, Ar} <- A:module_info(exports), MFA <- [{A, F, Ar}], not nameable(MFA, Ctx)] of
                [] -> ok;
                [First | _] -> deny(First, Ctx)
            end;
        false ->
            ok
    end.

%% A module on the code path that is not loaded yet: loaded (as a call of
%% it would) when the policy allows it, so its functions can be judged.
loadable(A, Ctx) ->
    on_code_path(A) andalso
        case allowed(A, module_info, 0, Ctx) =:= allow andalso code:ensure_loaded(A) of
            {module, A} -> true;
            _ -> deny({A, module_info, 0}, Ctx)
        end.

nameable({M, F, A}, Ctx) ->
    ordinary(M, F, A) andalso allowed(M, F, A, Ctx) =:= allow
        andalso lists:member(seccomp_profiles:kind(M, F, A), [plain, dispatch]).

%% Module names on the code path, read once per VM: a module that is not
%% loaded would be loaded by the first call that names it.
on_code_path(A) ->
    Key = {?MODULE, code_path_modules},
    Names = case persistent_term:get(Key, undefined) of
                undefined ->
                    Set = maps:from_list([{unicode:characters_to_binary(N), true} || {N, _, _} <- code:all_available()]),
                    persistent_term:put(Key, Set),
                    Set;
                Set ->
                    Set
            end,
    is_map_key(atom_to_binary(A, utf8), Names).

%% Whether a decoded term holds a fun.
holds_fun([]) -> false;
holds_fun([T | _Rest]) when is_function(T) -> true;
holds_fun([T | Rest]) when is_list(T) -> holds_fun(improper_items(T, Rest));
holds_fun([T | Rest]) when is_tuple(T) -> holds_fun(tuple_to_list(T) ++ Rest);
holds_fun([T | Rest]) when is_map(T) -> holds_fun(maps:keys(T) ++ maps:values(T) ++ Rest);
holds_fun([_ | Rest]) -> holds_fun(Rest).

improper_items([H | T], Rest) -> [H | improper_items(T, Rest)];
improper_items([], Rest) -> Rest;
improper_items(Tail, Rest) -> [Tail | Rest].

%%% Funs -----------------------------------------------------------------------

%% @doc A fun of arity `A' that performs `M:F' through the sandbox's checks,
%% whoever calls it (compiled code included). When the policy allows `M:F/A'
%% and the handler would merely call it, that is the plain `fun M:F/A':
%% captures of allowed functions cost what they cost outside the sandbox.
-spec wrap_fun(atom(), atom(), arity(), ctx()) -> function().
wrap_fun(M, F, A, C) when is_atom(M), is_atom(F), is_integer(A), A >= 0, A =< ?MAX_WRAPPED_ARITY ->
    case direct(M, F, A) andalso allowed(M, F, A, C) =:= allow of
        true -> erlang:make_fun(M, F, A);
        false -> checking_fun(M, F, A, C)
    end;
wrap_fun(M, F, A, _C) ->
    erlang:error(badarg, [M, F, A]).

checking_fun(M, F, A, C) ->
    H = fun(Args) -> call({M, F}, Args, C) end,
    case A of
        0 -> fun() -> H([]) end;
        1 -> fun(X1) -> H([X1]) end;
        2 -> fun(X1, X2) -> H([X1, X2]) end;
        3 -> fun(X1, X2, X3) -> H([X1, X2, X3]) end;
        4 -> fun(X1, X2, X3, X4) -> H([X1, X2, X3, X4]) end;
        5 -> fun(X1, X2, X3, X4, X5) -> H([X1, X2, X3, X4, X5]) end;
        6 -> fun(X1, X2, X3, X4, X5, X6) -> H([X1, X2, X3, X4, X5, X6]) end;
        7 -> fun(X1, X2, X3, X4, X5, X6, X7) -> H([X1, X2, X3, X4, X5, X6, X7]) end;
        8 -> fun(X1, X2, X3, X4, X5, X6, X7, X8) -> H([X1, X2, X3, X4, X5, X6, X7, X8]) end;
        9 -> fun(X1, X2, X3, X4, X5, X6, X7, X8, X9) -> H([X1, X2, X3, X4, X5, X6, X7, X8, X9]) end;
        10 -> fun(X1, X2, X3, X4, X5, X6, X7, X8, X9, X10) ->
                      H([X1, X2, X3, X4, X5, X6, X7, X8, X9, X10]) end;
        11 -> fun(X1, X2, X3, X4, X5, X6, X7, X8, X9, X10, X11) ->
                      H([X1, X2, X3, X4, X5, X6, X7, X8, X9, X10, X11]) end;
        12 -> fun(X1, X2, X3, X4, X5, X6, X7, X8, X9, X10, X11, X12) ->
                      H([X1, X2, X3, X4, X5, X6, X7, X8, X9, X10, X11, X12]) end
    end.
