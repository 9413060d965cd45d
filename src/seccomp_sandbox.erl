%% @doc The function handler of the eval sandbox: every call that sandboxed
%% code makes arrives here, is checked against the calling process's layers,
%% and is then carried out, with extra care for the calls that could reach
%% outside (apply, funs, spawns, sends, exit signals, atoms, amplifiers,
%% protocol dispatch on forged structs).
%%
%% A process runs sandboxed code only inside `erl_eval' with this handler,
%% inside funs made by `seccomp_sandbox_funs', or inside prepared code (see
%% `seccomp_compile'), which calls {@link call/3}, {@link dispatch/4},
%% {@link field/3} and `seccomp_sandbox_bounds:arith/4'. The first time a
%% process does so it joins the sandbox (`seccomp_sandbox_members'), if the
%% sandbox started it; any other process that calls a fun of the sandbox
%% gets `outside_sandbox' and stays as it was.
%%
%% The handler decides what kind of call it has and hands the work to the
%% module of that concern: the verdict (`seccomp_sandbox_verdict'), the
%% kind of call (`seccomp_sandbox_calls'), bounds (`seccomp_sandbox_bounds',
%% `seccomp_sandbox_atoms'), what arguments name (`seccomp_sandbox_data'),
%% processes (`seccomp_sandbox_procs') and funs (`seccomp_sandbox_funs').
-module(seccomp_sandbox).

-include("seccomp_sandbox.hrl").

-export([handler/1, call/3, dispatch/4, field/3]).

%% @doc The non-local function handler for `erl_eval'.
-spec handler(seccomp_sandbox_ctx:ctx()) -> {value, fun((term(), [term()]) -> term())}.
handler(Ctx) -> {value, fun(FunSpec, Args) -> call(FunSpec, Args, Ctx) end}.

%% @doc Carry out one call from sandboxed code.
-spec call(term(), [term()], seccomp_sandbox_ctx:ctx()) -> term().
call({'$seccomp', enter}, [], Ctx) ->
    seccomp_sandbox_members:join(Ctx);
call({'$seccomp', size}, [Size, Unit], Ctx) ->
    seccomp_sandbox_members:join(Ctx),
    seccomp_sandbox_bounds:bounded_size(Size, Unit, Ctx);
call({'$seccomp', key}, [Key], Ctx) ->
    seccomp_sandbox_members:join(Ctx),
    seccomp_sandbox_bounds:bounded_args([Key], Ctx),
    Key;
call({'$seccomp', concat}, [Parts], Ctx) ->
    seccomp_sandbox_members:join(Ctx),
    seccomp_sandbox_bounds:concat(Parts, Ctx);
call({'$seccomp', returns}, [Fun], Ctx) ->
    seccomp_sandbox_members:join(Ctx),
    %% Each call joins first: a fun of the sandbox runs in its members only.
    seccomp_sandbox_funs:returning(Fun, fun() -> seccomp_sandbox_members:join(Ctx) end,
                                   fun(R) -> seccomp_sandbox_bounds:bounded_value(R, Ctx) end);
call({'$seccomp', make_fun}, [M, F, A], Ctx) ->
    seccomp_sandbox_members:join(Ctx),
    wrap_fun(M, F, A, Ctx);
call({M, F}, Args, Ctx) when is_atom(M), is_atom(F) ->
    seccomp_sandbox_members:join(Ctx),
    checked(M, F, Args, Ctx);
call(Fun, Args, Ctx) when is_function(Fun), is_list(Args) ->
    seccomp_sandbox_members:join(Ctx),
    call_fun(Fun, Args, Ctx);
call(Other, Args, _Ctx) ->
    erlang:error({badfun, Other}, [Args]).

call_fun(Fun, Args, Ctx) ->
    {module, M} = erlang:fun_info(Fun, module),
    case M =:= erl_eval orelse own_funs(M) orelse seccomp_slot_names:is_slot(M) of
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
                    seccomp_sandbox_verdict:guarded(M, F, length(Args), fun() -> erlang:apply(Fun, Args) end, Ctx)
            end
    end.

checked(M, F, Args, Ctx) ->
    Arity = length(Args),
    seccomp_sandbox_calls:refused_here(M, F, Arity, Ctx) andalso seccomp_sandbox_verdict:deny({M, F, Arity}, Ctx),
    case seccomp_sandbox_calls:elixir_internal(M) of
        true -> elixir_helper(M, F, Args, Ctx);
        false -> seccomp_sandbox_verdict:guarded(M, F, Arity, fun() -> special(M, F, Args, Ctx) end, Ctx)
    end.

%%% Runtime helpers of the Elixir compiler ------------------------------------

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
    seccomp_sandbox_verdict:deny({M, F, length(Args)}, Ctx).

%%% Calls that need more than a policy check -----------------------------------

special(erlang, apply, [M, F, As], Ctx) -> apply3(M, F, As, Ctx);
special('Elixir.Kernel', apply, [M, F, As], Ctx) -> apply3(M, F, As, Ctx);
special(erlang, apply, [Fun, As], Ctx) -> call(Fun, As, Ctx);
special('Elixir.Kernel', apply, [Fun, As], Ctx) -> call(Fun, As, Ctx);
special(erlang, make_fun, [M, F, A], Ctx) -> wrap_fun(M, F, A, Ctx);
special('Elixir.Function', capture, [M, F, A], Ctx) -> wrap_fun(M, F, A, Ctx);
special(M, F, [Flag, Value], Ctx) when M =:= erlang, F =:= process_flag; M =:= 'Elixir.Process', F =:= flag ->
    seccomp_sandbox_flags:process_flag(Flag, Value) orelse seccomp_sandbox_verdict:deny({M, F, 2}, Ctx),
    erlang:process_flag(Flag, Value);
special(M, F, [_, _, _], Ctx) when M =:= erlang, F =:= process_flag; M =:= 'Elixir.Process', F =:= flag ->
    %% Another process's flags.
    seccomp_sandbox_verdict:deny({M, F, 3}, Ctx);
special(M, F, Args, Ctx) ->
    seccomp_sandbox_state:always_refused(M, F, length(Args)) andalso seccomp_sandbox_verdict:deny({M, F, length(Args)}, Ctx),
    seccomp_sandbox_timers:timer(M, F, length(Args)) andalso timer(M, F, Args, Ctx),
    seccomp_sandbox_state:allowed({M, F}, Args, own_process(Ctx))
        orelse seccomp_sandbox_verdict:deny({M, F, length(Args)}, Ctx),
    seccomp_sandbox_state:within({M, F}, Args, {Ctx#ctx.tab, Ctx#ctx.max_copy}) orelse seccomp_sandbox_ctx:memory_limit(Ctx),
    seccomp_offheap:charge(M, F, Args, {Ctx#ctx.tab, Ctx#ctx.max_binary}) orelse seccomp_sandbox_ctx:memory_limit(Ctx),
    case seccomp_profiles:kind(M, F, length(Args)) of
        plain ->
            seccomp_sandbox_bounds:bounded_work(M, F, Args, Ctx),
            Result = seccomp_sandbox_atoms:counting_atoms(M, F, Args, Ctx),
            seccomp_opaque:produced(M, F, Result, Ctx#ctx.tab),
            seccomp_sandbox_bounds:bounded_integer_result(Result, Ctx);
        dispatch ->
            dispatch(M, F, Args, Ctx);
        Kind ->
            seccomp_sandbox_bounds:flattener_args(M, F, Args, Ctx),
            starts_process(Kind) andalso spawn_options(M, F, Args, Ctx),
            special_kind(Kind, M, F, Args, Ctx)
    end.

%% A timer: aimed at one of the sandbox's processes, its message charged to
%% the run, and noted (a pool run that set one ends its runner).
timer(M, F, Args, Ctx) ->
    seccomp_sandbox_timers:allowed(M, F, Args, own_process(Ctx))
        orelse seccomp_sandbox_verdict:deny({M, F, length(Args)}, Ctx),
    %% (The timer itself is a few hundred bytes of the runtime's.)
    seccomp_offheap:charge_term({seccomp_sandbox_timers:message(M, F, Args), erlang:make_tuple(24, 0)},
                                {Ctx#ctx.tab, Ctx#ctx.max_binary})
        orelse seccomp_sandbox_ctx:memory_limit(Ctx),
    seccomp_sandbox_timers:set(Ctx#ctx.tab).

own_process(#ctx{tab = caller}) -> none;
own_process(Ctx) -> fun(P) -> P =:= self() orelse seccomp_sandbox_members:is_member(Ctx, P) end.

%% Spawn options in the arguments of a call that starts a process.
spawn_options(M, F, Args, Ctx) ->
    seccomp_sandbox_flags:spawn_options(Args) orelse seccomp_sandbox_verdict:deny({M, F, length(Args)}, Ctx).

starts_process(Kind) ->
    lists:member(Kind, [spawn_fun, spawn_mfa, spawner, routed, agent_mfa]).

apply3(M, F, As, Ctx) when is_atom(M), is_atom(F), is_list(As) -> call({M, F}, As, Ctx);
apply3(M, F, As, _Ctx) -> erlang:error(badarg, [M, F, As]).

special_kind(Kind, M, F, Args, #ctx{tab = caller} = Ctx)
  when Kind =:= routed; Kind =:= spawn_fun; Kind =:= spawn_mfa; Kind =:= spawner ->
    %% Caller mode has no sandbox to hold processes, and routed calls would
    %% run under the caller's layers alone.
    seccomp_sandbox_verdict:deny({M, F, length(Args)}, Ctx);
special_kind(atom, M, F, Args, Ctx) ->
    seccomp_sandbox_atoms:new_atom(M, F, Args, Ctx);
special_kind(Kind, M, F, Args, Ctx) when Kind =:= routed; Kind =:= spawner; element(1, Kind) =:= send;
                                        element(1, Kind) =:= signal ->
    %% Each of these copies its arguments to another process.
    seccomp_sandbox_bounds:bounded_args(Args, Ctx),
    copying_kind(Kind, M, F, Args, Ctx);
special_kind(spawn_fun, M, F, [Fun | Rest] = Args, Ctx) ->
    seccomp_sandbox_bounds:bounded_args(Args, Ctx),
    seccomp_sandbox_procs:spawn_checked(M, F, [seccomp_sandbox_procs:joining(Fun, Ctx) | Rest], Ctx);
special_kind(spawn_mfa, M, F, [Mod, Fun, As | Rest] = Args, Ctx) ->
    seccomp_sandbox_bounds:bounded_args(Args, Ctx),
    is_atom(Mod) andalso is_atom(Fun) andalso is_list(As) orelse erlang:error(badarg, Args),
    %% The child's first call is itself checked: spawn a joining fun instead.
    %% Every spawner with an `M, F, A' form also has a fun form of the same name.
    Start = seccomp_sandbox_procs:joining(fun() -> call({Mod, Fun}, As, Ctx) end, Ctx),
    seccomp_sandbox_procs:spawn_checked(M, F, [Start | Rest], Ctx);
special_kind(agent_mfa, M, F, [Agent, Mod, Fun, As | Rest] = Args, Ctx) ->
    seccomp_sandbox_bounds:bounded_args(Args, Ctx),
    is_atom(Mod) andalso is_atom(Fun) andalso is_list(As) orelse erlang:error(badarg, Args),
    seccomp_sandbox_procs:may_signal(Agent, {M, F, length(Args)}, signal, Ctx),
    %% The agent applies `Mod:Fun' to its state: through the handler, so the
    %% state is checked like any other argument.
    erlang:apply(M, F, [Agent, fun(State) -> call({Mod, Fun}, [State | As], Ctx) end | Rest]);
special_kind(info, M, F, Args, Ctx) ->
    seccomp_sandbox_procs:info(M, F, Args, Ctx);
special_kind(refused, M, F, Args, Ctx) ->
    seccomp_sandbox_verdict:deny({M, F, length(Args)}, Ctx);
special_kind(output, M, F, Args, Ctx) ->
    seccomp_sandbox_bounds:bounded_args(Args, Ctx),
    %% In caller mode there is no capture of the sandbox's own: nowhere.
    Device = case Ctx of
                 #ctx{tab = caller} -> discard;
                 _ -> seccomp_output:own_capture()
             end,
    Convert = fun(Mod, Fun, As) -> call({Mod, Fun}, As, Ctx) end,
    case seccomp_output:print({M, F, Args}, Device, Convert) of
        {ok, Value} -> Value;
        refused -> seccomp_sandbox_verdict:deny({M, F, length(Args)}, Ctx)
    end;
special_kind(decode, M, F, [Bin | Opts] = Args, Ctx) ->
    %% A decoded fun would run its code unchecked wherever it is called, and
    %% a decoded pid, port or reference names what the sandbox did not make;
    %% `safe' refuses atoms the VM does not know (they would escape the
    %% atom budget).
    Safe = case Opts of
               [] -> [safe];
               [L] when is_list(L) -> [safe | L];
               [Other] -> erlang:error(badarg, [Bin, Other])
           end,
    seccomp_sandbox_bounds:bounded_decode(Bin, Ctx),
    Term = erlang:apply(M, F, [Bin, Safe]),
    seccomp_sandbox_data:holds_capability([Term]) andalso seccomp_sandbox_verdict:deny({M, F, length(Args)}, Ctx),
    Term;
special_kind({amplifier, CountPos, UnitPos}, M, F, Args, #ctx{max_binary = Max} = Ctx) ->
    Unit = case UnitPos of
               none -> 8;
               _ -> seccomp_sandbox_bounds:unit_size(lists:nth(UnitPos, Args), Max)
           end,
    seccomp_sandbox_bounds:bounded_bytes(lists:nth(CountPos, Args), Unit, Ctx),
    carry_out(M, F, Args, Ctx);
special_kind({bignum, _Class} = Kind, M, F, Args, Ctx) ->
    seccomp_sandbox_bounds:bounded_integer(Kind, Args, Ctx),
    carry_out(M, F, Args, Ctx);
special_kind(compare, M, F, [X, Y] = Args, Ctx) ->
    %% A comparison stops at the smaller operand's end.
    seccomp_sandbox_ctx:copyable(X, Ctx) orelse seccomp_sandbox_ctx:copyable(Y, Ctx)
        orelse seccomp_sandbox_ctx:memory_limit(Ctx),
    erlang:apply(M, F, Args);
special_kind({iodata, Pos}, M, F, Args, #ctx{max_binary = Max} = Ctx) ->
    seccomp_size:within(lists:nth(Pos, Args), Max, iodata) andalso seccomp_caller_binaries:within()
        orelse seccomp_sandbox_ctx:memory_limit(Ctx),
    erlang:apply(M, F, Args).

copying_kind(routed, M, F, [Sup | _] = Args, Ctx) when M =/= rpc, M =/= erpc, M =/= 'Elixir.Node' ->
    %% A supervisor starts what it is asked to: only the sandbox's own
    %% supervisors may be asked, and those the caller listed in `send_to'.
    seccomp_sandbox_procs:own_process(Sup, Ctx) orelse lists:member(Sup, Ctx#ctx.send_to)
        orelse seccomp_sandbox_verdict:deny({M, F, length(Args)}, Ctx),
    seccomp_route:call(M, F, Args);
copying_kind(routed, M, F, Args, _Ctx) ->
    seccomp_route:call(M, F, Args);
copying_kind(spawner, M, F, Args, Ctx) ->
    %% Task, Agent, proc_lib...: the child joins at its first sandboxed call.
    seccomp_sandbox_members:below_process_limit(Ctx),
    dispatch(M, F, Args, Ctx);
copying_kind({send, DestPos}, M, F, Args, Ctx) ->
    seccomp_sandbox_procs:may_send(lists:nth(DestPos, Args), lists:nth(DestPos + 1, Args),
                                   {M, F, length(Args)}, Ctx),
    carry_out(M, F, Args, Ctx);
copying_kind({signal, DestPos}, M, F, Args, Ctx) ->
    seccomp_sandbox_procs:may_signal(lists:nth(DestPos, Args), {M, F, length(Args)}, signal, Ctx),
    carry_out(M, F, Args, Ctx).

%% The last step of a special kind: modules that may apply data get their
%% arguments checked too.
carry_out(M, F, Args, Ctx) ->
    case M =:= erlang orelse seccomp_profiles:applies_no_data(M) of
        true -> erlang:apply(M, F, Args);
        false -> dispatch(M, F, Args, Ctx)
    end.


%% Modules whose funs are the sandbox's own: they check their calls.
own_funs(M) ->
    M =:= ?MODULE orelse M =:= seccomp_sandbox_funs orelse M =:= seccomp_sandbox_procs.

%% A fun of `M:F/A' whose calls the handler checks.
wrap_fun(M, F, A, Ctx) ->
    seccomp_sandbox_funs:wrap(M, F, A, Ctx, fun(Args) -> call({M, F}, Args, Ctx) end).

%% @doc An allowed call into code that may run what its arguments name:
%% carried out once the arguments name nothing outside the policy (see
%% `seccomp_sandbox_data').
-spec dispatch(module(), atom(), list(), seccomp_sandbox_ctx:ctx()) -> term().
dispatch(M, F, Args, Ctx) ->
    %% Prepared code calls this directly: only a member may go on.
    seccomp_sandbox_members:join(Ctx),
    %% The scan for foreign code walks the arguments flattened.
    seccomp_sandbox_bounds:bounded_work(M, F, Args, Ctx),
    Spawns = seccomp_spawners:status(M, F, length(Args)) =/= false,
    Spawns andalso spawn_options(M, F, Args, Ctx),
    seccomp_sandbox_data:no_foreign_code({M, F, length(Args)}, Args, Ctx),
    Result = seccomp_sandbox_bounds:bounded_integer_result(seccomp_sandbox_atoms:counting_atoms(M, F, Args, Ctx), Ctx),
    %% A library start (`gen_event:start/0') whose process runs no sandboxed
    %% code would never join: the process it returns is the sandbox's (in
    %% caller mode, which holds no process, it is killed and the call refused).
    Spawns andalso seccomp_sandbox_procs:adopt_started(Result, {M, F, length(Args)}, Ctx),
    Result.

%% @doc Elixir's `var.field' in prepared code: the field of a map, or a
%% checked zero-arity call of the module an atom names.
-spec field(term(), atom(), seccomp_sandbox_ctx:ctx()) -> term().
field(#{} = Map, F, _Ctx) ->
    case Map of
        #{F := V} -> V;
        _ -> erlang:error({badkey, F, Map})
    end;
field(M, F, Ctx) when is_atom(M), M =/= nil, M =/= true, M =/= false ->
    call({M, F}, [], Ctx);
field(X, F, _Ctx) ->
    erlang:error({badkey, F, X}).
