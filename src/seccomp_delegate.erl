%% @doc Calls that ask another process to act: messages and timers.
%%
%% A restricted process must not have another, unrestricted process run
%% code for it. Whatever the send path (`send/2,3', `send_after',
%% `start_timer', `gen:call', `gen_server:call/cast', `gen_statem:call',
%% aliases...), what decides is the message, so the message is judged by
%% class: a message that carries code (a fun, or an `{M, F, Args}' naming an
%% exported function), that asks a behaviour to start, restart or replace a
%% child or to install a handler, or that is a `sys' request, is refused,
%% and so is any message or exit signal to this library's own processes, and
%% installing a handler (`gen_event', `logger', `error_logger', `Logger').
%% Timers that apply an `{M, F, A}' or a fun later are routed: the process
%% the timer server spawns takes on the caller's layers before the call,
%% which is checked again.
-module(seccomp_delegate).

-seccomp_routes([{erlang, send, '_'}, {erlang, '!', 2}, {erlang, send_nosuspend, '_'},
                 {erlang, send_after, '_'}, {erlang, start_timer, '_'}, {erlang, exit, 2},
                 {'Elixir.Kernel', send, 2}, {'Elixir.Process', send, 3},
                 {'Elixir.Process', send_after, '_'}, {'Elixir.Process', exit, 2},
                 {gen, '_', '_'}, {gen_server, '_', '_'}, {gen_statem, '_', '_'},
                 {gen_event, '_', '_'}, {'Elixir.GenServer', '_', '_'}, {logger, '_', '_'},
                 {error_logger, '_', '_'}, {'Elixir.Logger', '_', '_'},
                 {timer, apply_after, '_'}, {timer, apply_interval, '_'},
                 {timer, apply_repeatedly, '_'}]).

-export([route/3, carries_code/1, run_adopted/4]).

%% Request tags by which a behaviour process starts, replaces or runs something.
-define(ACTING_TAGS, [start_child, restart_child, terminate_child, delete_child,
                      add_handler, add_sup_handler, swap_handler, swap_sup_handler,
                      replace_state, replace_status, change_code, install, system]).

%% Functions that install callback modules into other processes.
-define(INSTALLING, [add_handler, add_sup_handler, swap_handler, swap_sup_handler,
                     add_report_handler, add_backend, add_primary_filter, add_handler_filter,
                     set_handler_config, update_handler_config, set_module_level]).

%% @private Enforcement point (see `seccomp_route').
-spec route(module(), atom(), [term()]) -> term().
route(timer, F, [Time, Fun] = Call) when is_function(Fun, 0) ->
    fun_timer(F, Call, [Time, erlang, apply, [Fun, []]]);
route(timer, F, [Time, Fun, Args] = Call) when is_list(Args), is_function(Fun, length(Args)) ->
    fun_timer(F, Call, [Time, erlang, apply, [Fun, Args]]);
route(timer, F, [Time, M, Fun, Args]) ->
    case seccomp_nif:is_restricted(self()) of
        false ->
            timer:F(Time, M, Fun, Args);
        true ->
            is_atom(M) andalso is_atom(Fun) andalso is_list(Args)
                orelse erlang:error({badarg, {M, Fun, Args}}),
            ok = seccomp_route:check({M, Fun, length(Args)}),
            Ticket = seccomp_violation:spawn_ticket({timer, F, 4}),
            timer:F(Time, ?MODULE, run_adopted, [Ticket, M, Fun, Args])
    end;
route(M, F, Args) ->
    case seccomp_nif:is_restricted(self()) andalso offending(F, Args) of
        false -> erlang:apply(M, F, Args);
        _Why -> seccomp_violation:refuse({M, F, length(Args)})
    end.

%% The fun forms of the timers (OTP 27+) are their `{erlang, apply, [Fun,
%% Args]}' form, as `timer' itself defines them; where `timer' has no fun
%% form, the call fails as it would unrouted.
fun_timer(F, Call, ApplyForm) ->
    case erlang:function_exported(timer, F, length(Call)) of
        true -> route(timer, F, ApplyForm);
        false -> erlang:apply(timer, F, Call)
    end.

%% @private The start of a process a timer spawns for a restricted caller.
-spec run_adopted(none | reference(), module(), atom(), [term()]) -> term().
run_adopted(none, M, F, Args) ->
    erlang:apply(M, F, Args);
run_adopted(Ticket, M, F, Args) ->
    ok = seccomp_process:adopt(Ticket),
    seccomp_route:apply(M, F, Args).

%% Installing a handler has other processes (an event manager, every
%% process that logs) run the handler module's callbacks.
offending(F, Args) ->
    case lists:member(F, ?ACTING_TAGS) orelse lists:member(F, ?INSTALLING) orelse carries_code(Args) of
        true -> code;
        false -> lists:any(fun is_library_process/1, Args) andalso library_process
    end.

%% @doc Whether a term carries code another process could run, or a request
%% that has a behaviour process act (see the module doc).
-spec carries_code(term()) -> boolean().
carries_code(T) when is_function(T) -> true;
carries_code({M, F, A} = T) when is_atom(M), is_atom(F), is_list(A) ->
    names_function(M, F, A) orelse carries_code(tuple_to_list(T));
carries_code(T) when is_tuple(T), tuple_size(T) > 0 ->
    lists:member(element(1, T), ?ACTING_TAGS) orelse carries_code(tuple_to_list(T));
carries_code([H | Tl]) -> carries_code(H) orelse carries_code(Tl);
carries_code(T) when is_map(T) -> carries_code(maps:to_list(T));
carries_code(_) -> false.

names_function(M, F, A) ->
    case length_or_none(A) of
        none -> false;
        N -> erlang:function_exported(M, F, N) orelse seccomp_args:is_module(M)
    end.

length_or_none(L) ->
    try length(L) catch error:badarg -> none end.

is_library_process(Dest) ->
    case whereis_dest(Dest) of
        Pid when is_pid(Pid), node(Pid) =:= node() -> seccomp_args:is_library_process(Pid);
        _ -> false
    end.

whereis_dest(Pid) when is_pid(Pid) -> Pid;
whereis_dest(Name) when is_atom(Name) -> whereis(Name);
whereis_dest({Name, Node}) when is_atom(Name), Node =:= node() -> whereis(Name);
whereis_dest(_) -> undefined.
