%% @doc Restrictions in OTP supervision trees.
%%
%% A restricted child spec starts its child through {@link start_restricted/2},
%% so every start and every restart applies the policy. Processes started by
%% a fun (`Task', `Agent', `proc_lib') carry it before their first
%% instruction; behaviour processes (`gen_server', `gen_statem', `gen_event',
%% `Supervisor'...) get it as soon as their start function returns, before
%% the supervisor learns of them: their `init/1' runs unrestricted.
%%
%% {@link start_child/2} closes the first bypass of a naive design: a
%% restricted process asking a supervisor for a worker gets one that carries
%% at least its own layers.
-module(seccomp_supervisor).

-export([child_spec/2, start_restricted/2, start_restricted/3, start_restricted/4,
         start_restricted/5, start_child/2, start_dynamic_child/2, task/3,
         ps/0, print_ps/0, tree/1, started_pid/1]).

-export_type([policy_source/0, restriction/0, sup_ref/0]).

-type policy_source() :: seccomp_policy:t() | map() | {app_env, atom(), atom()}
                       | {file, file:name_all()}.
-type restriction() :: {policy, policy_source()} | {ticket, reference()}.
-type sup_ref() :: pid() | atom() | {atom(), node()} | {global, term()} | {via, module(), term()}.

%% @doc A child spec whose child starts (and restarts) restricted by `Policy'.
%% `Policy' may name application env (`{app_env, App, Key}') or a file
%% (`{file, Path}'): it is read at every start, so operators can tighten it
%% without code changes.
-spec child_spec(supervisor:child_spec(), policy_source()) -> supervisor:child_spec().
child_spec(Spec, Policy) -> restrict_spec(Spec, {policy, Policy}).

restrict_spec(#{start := Start} = Spec, Restriction) ->
    Spec#{start := wrap_start(Start, Restriction)};
restrict_spec({Id, Start, Restart, Shutdown, Type, Modules}, Restriction) ->
    {Id, wrap_start(Start, Restriction), Restart, Shutdown, Type, Modules};
restrict_spec(Other, _Restriction) ->
    erlang:error({badarg, Other}).

wrap_start({?MODULE, start_restricted, [Start, Restrictions]}, Restriction) ->
    {?MODULE, start_restricted, [Start, Restrictions ++ [Restriction]]};
wrap_start({M, F, A} = Start, Restriction) when is_atom(M), is_atom(F), is_list(A) ->
    {?MODULE, start_restricted, [Start, [Restriction]]}.

%% @doc The start function of restricted children (do not call directly).
-spec start_restricted(mfa() | {module(), atom(), list()}, [restriction()]) -> term().
start_restricted(Start, Restrictions) -> start_with(Start, Restrictions, []).

%% Extra arguments appended by `simple_one_for_one' and dynamic supervisors.
-spec start_restricted({module(), atom(), list()}, [restriction()], term()) -> term().
start_restricted(Start, Restrictions, X1) -> start_with(Start, Restrictions, [X1]).
-spec start_restricted({module(), atom(), list()}, [restriction()], term(), term()) -> term().
start_restricted(Start, Restrictions, X1, X2) -> start_with(Start, Restrictions, [X1, X2]).
-spec start_restricted({module(), atom(), list()}, [restriction()], term(), term(), term()) -> term().
start_restricted(Start, Restrictions, X1, X2, X3) -> start_with(Start, Restrictions, [X1, X2, X3]).

start_with({M, F, A}, Restrictions, Extra) ->
    case tickets(Restrictions, []) of
        {ok, Tickets} ->
            Args = A ++ Extra,
            case fun_start(M, F, Args) of
                {Fun, Rebuild} ->
                    erlang:apply(M, F, Rebuild(adopting(Tickets, Fun)));
                none ->
                    Started = erlang:apply(M, F, Args),
                    restrict_started(Started, Tickets)
            end;
        {error, _} = Error ->
            Error
    end.

tickets([], Acc) ->
    {ok, lists:reverse(Acc)};
tickets([{ticket, T} | Rest], Acc) ->
    tickets(Rest, [T | Acc]);
tickets([{policy, Source} | Rest], Acc) ->
    case resolve(Source) of
        {ok, P} -> tickets(Rest, [seccomp_nif:policy_ticket(seccomp_policy:native(P)) | Acc]);
        {error, Why} -> {error, {seccomp_policy, Why}}
    end.

resolve({app_env, App, Key}) ->
    case application:get_env(App, Key) of
        {ok, Source} -> resolve(Source);
        undefined -> {error, {no_policy_in_app_env, App, Key}}
    end;
resolve({file, Path}) ->
    seccomp_policy:from_file(Path);
resolve(Policy) when is_list(Policy) ->
    %% The Elixir API's keyword form (`allow: [...]'), e.g. from config.exs.
    case code:ensure_loaded('Elixir.Seccomp.Policy') of
        {module, Mod} -> Mod:native(Policy);
        {error, _} -> seccomp_policy:new(Policy)
    end;
resolve(Policy) ->
    seccomp_policy:new(Policy).

%% Starts that take the child's function: we can restrict before it runs.
fun_start('Elixir.Task', start_link, [Fun]) when is_function(Fun, 0) ->
    {Fun, fun(Wrapped) -> [Wrapped] end};
fun_start('Elixir.Task', start_link, [M, F, A]) when is_atom(M), is_atom(F), is_list(A) ->
    {fun() -> erlang:apply(M, F, A) end, fun(Wrapped) -> [Wrapped] end};
fun_start('Elixir.Agent', start_link, [Fun | Opts]) when is_function(Fun, 0) ->
    {Fun, fun(Wrapped) -> [Wrapped | Opts] end};
fun_start(_M, _F, _A) -> none.

adopting(Tickets, Fun) ->
    fun() ->
            [ok = seccomp_nif:adopt(T) || T <- Tickets],
            Fun()
    end.

restrict_started(Result, Tickets) ->
    case started_pid(Result) of
        undefined -> Result;
        Pid -> apply_tickets(Pid, Tickets, Result)
    end.

%% @private The process a start function or a spawn returned, in any of the
%% usual shapes (`Pid', `{Pid, MonitorRef}', `{ok, Pid}', `{ok, Pid, Info}',
%% a `Task'), or `undefined'.
-spec started_pid(term()) -> pid() | undefined.
started_pid(Pid) when is_pid(Pid) -> Pid;
started_pid({Pid, Ref}) when is_pid(Pid), is_reference(Ref) -> Pid;
started_pid({ok, Pid}) when is_pid(Pid) -> Pid;
started_pid({ok, Pid, _Info}) when is_pid(Pid) -> Pid;
started_pid(#{pid := Pid}) when is_pid(Pid) -> Pid;
started_pid(_) -> undefined.

apply_tickets(Pid, Tickets, Result) ->
    Outcomes = [seccomp_nif:adopt_pid(Pid, T) || T <- Tickets],
    case [E || {error, not_permitted} = E <- Outcomes] of
        [] ->
            Result;
        _ ->
            %% Fail closed: a child we could not restrict must not run.
            unlink(Pid),
            exit(Pid, kill),
            {error, {seccomp, not_permitted}}
    end.

%%% Bypass 1: restricted callers -------------------------------------------------

%% @doc `supervisor:start_child/2' for any caller: when the caller is
%% restricted, the child carries at least the caller's layers.
-spec start_child(sup_ref(), supervisor:child_spec() | [term()]) -> term().
start_child(Sup, SpecOrArgs) when is_map(SpecOrArgs) ->
    case is_dynamic(Sup) of
        true -> start_dynamic_child(Sup, SpecOrArgs);
        false -> start_supervisor_child(Sup, SpecOrArgs)
    end;
start_child(Sup, SpecOrArgs) ->
    start_supervisor_child(Sup, SpecOrArgs).

start_supervisor_child(Sup, SpecOrArgs) ->
    on_behalf(fun(Restriction) -> supervisor:start_child(Sup, with_restriction(SpecOrArgs, Restriction)) end,
              {supervisor, start_child, 2}).

%% @doc `DynamicSupervisor.start_child/2' for a child spec map, like {@link start_child/2}.
-spec start_dynamic_child(pid() | atom(), map()) -> term().
start_dynamic_child(Sup, Spec) ->
    on_behalf(fun(Restriction) ->
                      'Elixir.DynamicSupervisor':start_child(Sup, with_restriction(Spec, Restriction))
              end, {'Elixir.DynamicSupervisor', start_child, 2}).

%% @doc `Task.Supervisor' `start_child', `async' or `async_nolink' with the
%% caller's layers on the task before it runs.
-spec task(pid() | atom(), fun(() -> term()), start_child | async | async_nolink) -> term().
task(Sup, Fun, Kind) when is_function(Fun, 0) ->
    Wrapped = case seccomp_violation:spawn_ticket({'Elixir.Task.Supervisor', Kind, 2}) of
                  none -> Fun;
                  T -> adopting([T], Fun)
              end,
    'Elixir.Task.Supervisor':Kind(Sup, Wrapped).

%% Elixir's DynamicSupervisor speaks its own protocol (and names itself a
%% `supervisor' in `$initial_call'): only its state tells them apart.
is_dynamic(Sup) ->
    try sys:get_state(Sup, 5000) of
        #{'__struct__' := 'Elixir.DynamicSupervisor'} -> true;
        _ -> false
    catch
        exit:_ -> false
    end.

with_restriction(Spec, none) -> Spec;
with_restriction(Spec, R) when is_map(Spec); is_tuple(Spec) -> restrict_spec(Spec, R);
with_restriction(ExtraArgs, _R) when is_list(ExtraArgs) -> ExtraArgs.

%% The start runs in a helper that is not restricted, so it may restrict the
%% child even when the supervisor's template is not one of ours.
on_behalf(Start, MFA) ->
    case seccomp_violation:spawn_ticket(MFA) of
        none ->
            Start(none);
        T ->
            Caller = self(),
            {Pid, Ref} = spawn_monitor(fun() ->
                                               Result = Start({ticket, T}),
                                               Caller ! {self(), ensure_restricted(Result, T)}
                                       end),
            receive
                {Pid, Result} -> demonitor(Ref, [flush]), Result;
                {'DOWN', Ref, process, Pid, Why} -> {error, Why}
            end
    end.

ensure_restricted(R, T) ->
    case started_pid(R) of
        undefined -> R;
        Pid -> restrict_if_free(Pid, T), R
    end.

restrict_if_free(Pid, T) ->
    case seccomp:is_restricted(Pid) of
        true -> ok;
        false -> _ = seccomp_nif:adopt_pid(Pid, T), ok
    end.

%%% Seeing the tree --------------------------------------------------------------------

%% @doc Every local process with its restriction state.
-spec ps() -> [#{pid := pid(), name := term(), mode := disabled | filter,
                 layers := non_neg_integer(), checks := non_neg_integer(),
                 denials := non_neg_integer()}].
ps() ->
    [row(P, S) || P <- processes(), S <- [seccomp:status(P)], is_map(S)].

row(Pid, #{mode := Mode, layers := Layers, checks := C, denials := D}) ->
    Name = case process_info(Pid, registered_name) of
               {registered_name, N} -> N;
               _ -> initial_call(Pid)
           end,
    #{pid => Pid, name => Name, mode => Mode, layers => length(Layers), checks => C, denials => D}.

initial_call(Pid) ->
    case process_info(Pid, dictionary) of
        {dictionary, D} ->
            case proplists:get_value('$initial_call', D) of
                undefined -> element(2, process_info(Pid, initial_call));
                MFA -> MFA
            end;
        undefined -> undefined
    end.

%% @doc Print restricted processes, like `Seccomp:' lines of /proc/PID/status.
-spec print_ps() -> ok.
print_ps() ->
    Rows = [R || #{mode := filter} = R <- ps()],
    io:format("~-14s ~-40s ~-8s ~6s ~10s ~8s~n", ["PID", "NAME", "SECCOMP", "LAYERS", "CHECKS", "DENIED"]),
    [io:format("~-14s ~-40s ~-8s ~6b ~10b ~8b~n",
               [pid_to_list(P), io_lib:format("~0p", [N]), "filter", L, C, D])
     || #{pid := P, name := N, layers := L, checks := C, denials := D} <- Rows],
    io:format("~b restricted of ~b processes~n", [length(Rows), length(processes())]).

%% @doc A supervision tree with each child's restriction state.
-spec tree(sup_ref()) -> [map()].
tree(Sup) ->
    [begin
         Node = #{id => Id, pid => Pid, type => Type,
                  seccomp => case is_pid(Pid) of
                                 true -> seccomp:status(Pid);
                                 false -> not_running
                             end},
         case Type =:= supervisor andalso is_pid(Pid) of
             true -> Node#{children => tree(Pid)};
             false -> Node
         end
     end || {Id, Pid, Type, _} <- supervisor:which_children(Sup)].
