%% @doc Prepared sandboxed code: the source goes through the same front end
%% and mediation pass as `seccomp_eval:eval/2' once, is compiled into a
%% module slot, and can then be run many times, either in a pool of warm
%% sandbox processes (every limit of `eval') or in the caller's own process
%% (policy-checked, no resource limits).
%%
%% Use {@link seccomp_eval:prepare/2}, {@link seccomp_eval:run/3} and
%% {@link seccomp_eval:release/1}.
-module(seccomp_prepare).

-export([prepare/2, run/3, release/1]).

-record(prepared, {slot :: seccomp_prepared:slot(),
                   generation :: pos_integer(),
                   module :: module(),
                   language :: seccomp_source:language(),
                   %% The caller-mode context: the prepared policy and limits.
                   ctx :: seccomp_sandbox_ctx:ctx(),
                   %% {user's name, Erlang variable} for each input.
                   names :: [{atom(), atom()}],
                   state :: seccomp_eval:bindings_state(),
                   receives :: boolean(),
                   mode :: mode(),
                   pool_size :: non_neg_integer(),
                   timeout :: non_neg_integer()}).

-opaque prepared() :: #prepared{}.
-type mode() :: pool | caller.
-type reason() :: seccomp_eval:reason() | released | no_pool
                | {prepare_limit, count | size | owner, pos_integer()}.
-export_type([prepared/0, mode/0, reason/0]).

%% The heap the front end and compiler may use, in `max_heap_size's.
-define(COMPILE_HEAP_FACTOR, 4).
-define(PREPARE_KEYS, [mode, pool_size, max_source, optimize]).
-define(DEFAULT_MAX_SOURCE, 65536).

%% @doc Prepare `Code' with the options of `seccomp_eval:eval/2' plus `mode'
%% (`pool', the default, or `caller'), `pool_size' (warm processes; default
%% the number of schedulers in pool mode, 0 in caller mode), `max_source'
%% (bytes, default 65536) and `optimize' (`false' by default: the compiler's
%% SSA optimisations make `prepare' slower). `bindings' names the variables
%% runs will pass (the values are ignored); for Erlang, unbound variables are
%% inputs anyway. A run may pick the other mode when the prepared value has a
%% pool (`pool_size' above 0).
-spec prepare(iodata() | term(), map() | list()) -> {ok, prepared()} | {error, reason()}.
prepare(Code, Opts) when is_list(Opts) ->
    try maps:from_list(Opts) of M -> prepare(Code, M)
    catch error:badarg -> {error, {invalid_option, Opts}}
    end;
prepare(Code, Opts) when is_map(Opts) ->
    case prepare_options(Opts) of
        {ok, O, P} -> within_size(Code, O, P);
        {error, _} = E -> E
    end;
prepare(_Code, Opts) ->
    {error, {invalid_option, Opts}}.

prepare_options(Opts) ->
    Mode = maps:get(mode, Opts, pool),
    Size = maps:get(pool_size, Opts, case Mode of pool -> erlang:system_info(schedulers_online); _ -> 0 end),
    MaxSource = maps:get(max_source, Opts, ?DEFAULT_MAX_SOURCE),
    Optimize = maps:get(optimize, Opts, false),
    Bindings = names_as_bindings(maps:get(bindings, Opts, [])),
    Output = maps:get(output, Opts, discard),
    if
        Mode =/= pool, Mode =/= caller -> {error, {invalid_option, {mode, Mode}}};
        %% Runs return no printed text: pool runs discard it.
        Output =/= discard -> {error, {invalid_option, {output, Output}}};
        not is_integer(Size); Size < 0; Mode =:= pool, Size =:= 0 ->
            {error, {invalid_option, {pool_size, Size}}};
        not is_integer(MaxSource); MaxSource < 0 -> {error, {invalid_option, {max_source, MaxSource}}};
        not is_boolean(Optimize) -> {error, {invalid_option, {optimize, Optimize}}};
        true ->
            case seccomp_options:options(maps:without(?PREPARE_KEYS, Opts#{bindings => Bindings})) of
                {ok, O} ->
                    {ok, O#{optimize => Optimize},
                     #{mode => Mode, pool_size => Size, max_source => MaxSource}};
                {error, _} = E -> E
            end
    end.

%% A list of names declares inputs without sample values.
names_as_bindings(Bs) when is_list(Bs) -> [case B of N when is_atom(N) -> {N, nil}; _ -> B end || B <- Bs];
names_as_bindings(Bs) -> Bs.

within_size(Code, O, #{max_source := Max} = P) ->
    case seccomp_source:within_size(Code, Max) of
        true -> ok = seccomp_reach:ensure(), ok = seccomp_args:warm(), reserve(Code, O, P);
        false -> {error, {prepare_limit, size, Max}}
    end.

reserve(Code, O, P) ->
    Ticket = seccomp_violation:spawn_ticket({seccomp_eval, prepare, 2}),
    case seccomp_prepared:reserve(self()) of
        {ok, Slot, Mod, Gen} ->
            case install(Code, O, P, Ticket, {Slot, Mod, Gen}) of
                {ok, _} = Ok -> Ok;
                {error, _} = E -> seccomp_prepared:release(Slot, Gen), E
            end;
        {error, _} = E ->
            E
    end.

install(Code, #{policy := Policy, language := Lang, timeout := Timeout} = O, P, Ticket, {Slot, Mod, Gen}) ->
    Native = seccomp_policy:native(Policy),
    case build(Code, O, Ticket, Mod, Gen, Native) of
        {ok, Bin, #{receives := Receives}, State, Names} ->
            case seccomp_prepared:load(Slot, Gen, Bin) of
                ok ->
                    #{mode := Mode, pool_size := Size} = P,
                    Pool = #{generation => Gen, module => Mod, size => Size, policy => Policy,
                             ticket => Ticket, language => Lang, opts => O, receives => Receives},
                    case start_pool(Size, Slot, Pool) of
                        ok ->
                            {ok, #prepared{slot = Slot, generation = Gen, module = Mod,
                                           language = Lang, ctx = seccomp_sandbox_ctx:caller(Native, O),
                                           names = Names, state = State, receives = Receives,
                                           mode = Mode, pool_size = Size, timeout = Timeout}};
                        {error, _} = E ->
                            E
                    end;
                {error, _} = E ->
                    E
            end;
        {error, _} = E ->
            E
    end.

start_pool(0, _Slot, _Spec) ->
    ok;
start_pool(_Size, Slot, #{generation := Gen} = Spec) ->
    case seccomp_pool:start(Spec) of
        {ok, Keepers} -> seccomp_prepared:attach(Slot, Gen, Keepers);
        {error, _} = E -> E
    end.

%% The front end and the compiler run in a process that carries the policy,
%% as `eval' does: Elixir's expansion checks structs against it. Its heap is
%% bounded: the compiler's passes work on what the code computes from
%% literals (a tuple doubled forty times is a few hundred words shared, and
%% 2^40 nodes to a pass that does not share).
build(Code, #{language := Lang, timeout := Timeout, max_heap_size := Heap} = O, Ticket, Mod, Gen, Native) ->
    Me = self(),
    Tag = make_ref(),
    {Pid, Ref} =
        spawn_opt(fun() ->
                          Ticket =:= none orelse seccomp_nif:adopt(Ticket),
                          ok = seccomp_nif:restrict_self(Native),
                          Me ! {Tag, compile(Code, O, Mod, Gen, Native, Lang)}
                  end,
                  [monitor, {max_heap_size, #{size => ?COMPILE_HEAP_FACTOR * Heap, kill => true,
                                              error_logger => false}}]),
    receive
        {Tag, Result} -> demonitor(Ref, [flush]), Result;
        {'DOWN', Ref, process, Pid, killed} -> {error, memory_limit};
        {'DOWN', Ref, process, Pid, Why} -> {error, {exception, exit, Why, <<"preparing failed">>}}
    after Timeout ->
        exit(Pid, kill),
        demonitor(Ref, [flush]),
        {error, timeout}
    end.

compile(Code, #{optimize := Optimize} = O, Mod, Gen, Native, Lang) ->
    try
        #{exprs := Exprs, state := State, names := Names} = seccomp_front:front(Code, O),
        %% Erlang code reads unbound variables from the bindings; Elixir code
        %% only the declared ones (anything else does not expand).
        Inputs = case State of
                     erlang -> unbound;
                     _ -> [E || {_, E} <- Names]
                 end,
        Spec = #{module => Mod, generation => Gen, exprs => Exprs, policy => Native,
                 inputs => Inputs, optimize => Optimize},
        case seccomp_compile:module(Spec) of
            {ok, Bin, #{inputs := In} = Info} when State =:= erlang ->
                {ok, Bin, Info, State, [{V, V} || V <- In]};
            {ok, Bin, #{inputs := In, outputs := Out} = Info} ->
                {ok, Bin, Info, elixir_names(State, In ++ Out), Names};
            {error, _} = E -> E
        end
    catch
        Class:Reason:Stack -> seccomp_outcome:caught(Lang, Class, Reason, Stack)
    end.

%% Which Erlang variable holds each Elixir variable at the end of a run,
%% worked out once (the translation's state says it for any set of values).
elixir_names({elixir, ExS, ErlS}, ErlVars) ->
    Identity = maps:from_list([{V, V} || V <- ErlVars]),
    {elixir_names, seccomp_elixir:dump_bindings(Identity, {ExS, ErlS})}.

%% @doc Run prepared code with `Bindings'. Options: `mode' (`pool' or
%% `caller', default: the prepared value's) and `timeout' (ms, pool mode).
-spec run(prepared(), list() | map(), map() | list()) -> seccomp_eval:result() | {error, reason()}.
run(#prepared{} = P, Bindings, Opts) when is_list(Opts) ->
    try maps:from_list(Opts) of M -> run(P, Bindings, M)
    catch error:badarg -> {error, {invalid_option, Opts}}
    end;
run(#prepared{mode = DefaultMode, timeout = DefaultTimeout} = P, Bindings, Opts) when is_map(Opts) ->
    Mode = maps:get(mode, Opts, DefaultMode),
    Timeout = maps:get(timeout, Opts, DefaultTimeout),
    Unknown = case map_size(Opts) of
                  0 -> [];
                  _ -> maps:keys(maps:without([mode, timeout], Opts))
              end,
    try inputs(P, Bindings) of
        _ when Unknown =/= [] ->
            {error, {invalid_option, hd(Unknown)}};
        _ when Mode =/= caller, Mode =/= pool ->
            {error, {invalid_option, {mode, Mode}}};
        _ when not is_integer(Timeout); Timeout < 0 ->
            {error, {invalid_option, {timeout, Timeout}}};
        Inputs ->
            finish(P, Bindings, Inputs, run_mode(Mode, P, Inputs, Timeout))
    catch
        throw:{missing_binding, _} = Missing -> {error, Missing};
        error:_ -> {error, {invalid_option, {bindings, Bindings}}}
    end;
run(Other, _Bindings, _Opts) ->
    {error, {invalid_option, {prepared, Other}}}.

%% The values of the inputs, under their Erlang names; raises on bindings
%% that are not a map or a list of pairs.
inputs(#prepared{language = erlang}, Bs) when is_map(Bs) -> Bs;
inputs(#prepared{language = erlang}, Bs) -> maps:from_list(Bs);
inputs(#prepared{names = Names}, Bs) when is_map(Bs) ->
    maps:from_list([{Erl, binding(maps:find(Name, Bs), Name)} || {Name, Erl} <- Names]);
inputs(#prepared{names = Names}, Bs) ->
    %% A keyword list is read in place, as short lists usually are.
    true = lists:all(fun is_pair/1, Bs),
    maps:from_list([{Erl, binding(lists:keyfind(Name, 1, Bs), Name)} || {Name, Erl} <- Names]).

%% A declared Elixir binding the run does not pass is named as the user wrote it.
binding({_, V}, _Name) -> V;
binding(_Missing, Name) -> throw({missing_binding, Name}).

is_pair({_, _}) -> true;
is_pair(_) -> false.

run_mode(caller, #prepared{receives = true}, _Inputs, _Timeout) ->
    {error, {unsafe_form, 1, <<"receive is not available in caller mode">>}};
run_mode(caller, #prepared{module = Mod, generation = Gen, ctx = Ctx, language = Lang}, Inputs, _Timeout) ->
    Caller = seccomp_sandbox_ctx:begin_caller_run(Ctx),
    Result = seccomp_outcome:execute(Mod, Gen, Inputs, Ctx, Lang),
    seccomp_outcome:sticky(seccomp_sandbox_ctx:end_caller_run(Caller), Result);
run_mode(pool, #prepared{pool_size = 0}, _Inputs, _Timeout) ->
    {error, no_pool};
run_mode(pool, #prepared{generation = Gen, pool_size = Size}, Inputs, Timeout) ->
    seccomp_pool:run(Gen, Size, Inputs, Timeout).

%% The user's bindings after a run: theirs, updated with what the code bound.
finish(_P, Given, _Inputs, {ok, Value, Bound}) when map_size(Bound) =:= 0 ->
    {ok, Value, Given};
finish(#prepared{language = erlang}, _Given, Inputs, {ok, Value, Bound}) ->
    {ok, Value, seccomp_front:bindings_out(erlang, maps:merge(Inputs, Bound))};
finish(#prepared{state = State, names = Names}, Given, Inputs, {ok, Value, Bound}) ->
    Out = seccomp_front:bindings_out(State, maps:merge(Inputs, Bound)),
    User = case Given of
               #{} -> maps:to_list(Given);
               _ -> Given
           end,
    case length(User) > length(Names) of
        false ->
            {ok, Value, Out};
        true ->
            %% Bindings the code was not prepared for pass through unchanged.
            Undeclared = [KV || {K, _} = KV <- User, not lists:keymember(K, 1, Names)],
            {ok, Value, lists:ukeysort(1, Out ++ Undeclared)}
    end;
finish(_P, _Given, _Inputs, {error, _} = E) ->
    E.

%% @doc Release prepared code: its pool stops (runs in flight end with
%% `{error, released}'), its slot is freed, and later runs return
%% `{error, released}'.
-spec release(prepared()) -> ok | {error, {invalid_option, {prepared, term()}}}.
release(#prepared{slot = Slot, generation = Gen}) ->
    seccomp_prepared:release(Slot, Gen);
release(Other) ->
    {error, {invalid_option, {prepared, Other}}}.
