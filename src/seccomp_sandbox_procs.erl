%% @doc The processes sandboxed code starts, signals and inspects: a
%% spawned child is a member from birth and joins at its first call;
%% messages and exit signals reach only the sandbox's own processes (and
%% `send_to'); process information only of members, and never what shows
%% the keeper or the library's state.
-module(seccomp_sandbox_procs).

-include("seccomp_sandbox.hrl").

-export([may_send/4, adopt_started/3, spawn_checked/4, joining/2, own_process/2, may_signal/4, info/4]).

%% @doc Carry out a spawn within `max_processes'. The child is a member
%% from birth, so the parent may message it at once.
-spec spawn_checked(module(), atom(), list(), seccomp_sandbox_ctx:ctx()) -> term().
spawn_checked(M, F, Args, Ctx) ->
    seccomp_sandbox_members:below_process_limit(Ctx),
    Started = erlang:apply(M, F, Args),
    case seccomp_supervisor:started_pid(Started) of
        undefined -> ok;
        Pid -> seccomp_sandbox_members:register_member(Pid, Ctx)
    end,
    Started.

%% @doc The start fun of a member: it joins, then runs `Fun'.
%%
%% The child's exit reason is copied to every process linked to or
%% monitoring it: one too large to copy becomes `memory_limit'. The child
%% ends with an exit, never an error: the VM logs an error with its stack,
%% and the host's logger would format the sandbox's data. The reason is
%% what the VM would give (`{Reason, Stack}'), made inert.
-spec joining(fun(() -> term()), seccomp_sandbox_ctx:ctx()) -> fun(() -> no_return()).
joining(Fun, Ctx) when is_function(Fun, 0) ->
    fun() ->
            seccomp_sandbox_members:join(Ctx),
            try Fun()
            catch Class:Reason:Stack ->
                    %% An error's stack (with a clause's arguments) is part of the reason.
                    seccomp_sandbox_ctx:copyable({Reason, Stack}, Ctx) orelse exit(memory_limit),
                    exit(exit_reason(Class, Reason, Stack))
            end
    end;
joining(Other, _Ctx) -> erlang:error(badarg, [Other]).

exit_reason(exit, Reason, _Stack) -> seccomp_inert:term(Reason);
exit_reason(error, Reason, Stack) -> {seccomp_inert:term(Reason), seccomp_inert:stack(Stack)};
exit_reason(throw, Reason, Stack) -> {{nocatch, seccomp_inert:term(Reason)}, seccomp_inert:stack(Stack)}.

%% @doc A member, or a process a member started (see
%% `seccomp_sandbox_members:own/2'), named or by pid.
-spec own_process(atom() | pid() | term(), seccomp_sandbox_ctx:ctx()) -> boolean().
own_process(Name, Ctx) when is_atom(Name) -> own_process(erlang:whereis(Name), Ctx);
own_process(Pid, Ctx) -> seccomp_sandbox_members:own(Ctx, Pid).

%% @doc Messages and exit signals may only reach the sandbox's own
%% processes, and the registered names the caller listed in `send_to'.
-spec may_signal(term(), mfa(), send | signal, seccomp_sandbox_ctx:ctx()) -> true.
may_signal(Dest, MFA, Kind, #ctx{tab = caller, send_to = SendTo} = Ctx) ->
    Kind =:= send andalso lists:member(Dest, SendTo) orelse seccomp_sandbox_verdict:deny(MFA, Ctx);
may_signal(Dest, MFA, Kind, #ctx{tab = Tab, send_to = SendTo} = Ctx) ->
    Allowed = case Dest of
                  Pid when is_pid(Pid) ->
                      Pid =:= self() orelse ets:member(Tab, Pid)
                          orelse (Kind =:= send andalso lists:member(Pid, SendTo));
                  Name when is_atom(Name), Kind =:= send -> lists:member(Name, SendTo);
                  _ -> false
              end,
    Allowed orelse seccomp_sandbox_verdict:deny(MFA, Ctx).

%% @doc Make the processes a library start returned (`{ok, Pid}', a pid,
%% within a few levels of tuples and lists) members, when this process
%% started them: counted against `max_processes' and ended with the run. A
%% caller-mode run holds no process: one it started is killed and `MFA'
%% refused.
-spec adopt_started(term(), mfa(), seccomp_sandbox_ctx:ctx()) -> ok.
adopt_started(Result, MFA, Ctx) ->
    Me = self(),
    Started = [Pid || Pid <- returned_pids(Result, 3), erlang:process_info(Pid, parent) =:= {parent, Me}],
    case Ctx of
        #ctx{tab = caller} when Started =/= [] ->
            [exit(Pid, kill) || Pid <- Started],
            seccomp_sandbox_verdict:deny(MFA, Ctx);
        _ ->
            lists:foreach(fun(Pid) -> seccomp_sandbox_members:register_member(Pid, Ctx) end, Started)
    end.

returned_pids(Pid, _Depth) when is_pid(Pid), node(Pid) =:= node() -> [Pid];
returned_pids(_T, 0) -> [];
returned_pids(T, Depth) when is_tuple(T), tuple_size(T) =< 8 ->
    lists:append([returned_pids(E, Depth - 1) || E <- tuple_to_list(T)]);
returned_pids([H | T], Depth) -> returned_pids(H, Depth - 1) ++ returned_pids(T, Depth - 1);
returned_pids(_T, _Depth) -> [].

%% @doc A message to a member, or to a process the caller listed in
%% `send_to' that is no protocol message of the runtime or of OTP: such a
%% process runs host code, and a forged `{system, From, suspend}' (`sys'),
%% `{'EXIT', Parent, shutdown}' (its parent's exit), `{'$gen_call', ...}'
%% (a request whose reply goes elsewhere), `{io_request, ...}', a socket's or
%% a monitor's message, or a message that carries code would have OTP act
%% on it before the host's own code sees it.
%% What such messages hold is charged to the run like off-heap memory: a
%% host process that does not read its mailbox keeps them.
-spec may_send(term(), term(), mfa(), seccomp_sandbox_ctx:ctx()) -> true.
may_send(Dest, Msg, MFA, Ctx) ->
    may_signal(Dest, MFA, send, Ctx),
    own_process(Dest, Ctx) orelse host_message(Msg, MFA, Ctx).

host_message(Msg, MFA, #ctx{tab = Tab, max_binary = MaxBinary} = Ctx) ->
    protocol_message(Msg) andalso seccomp_sandbox_verdict:deny(MFA, Ctx),
    seccomp_offheap:charge_term(Msg, {Tab, MaxBinary}) orelse seccomp_sandbox_ctx:memory_limit(Ctx).

protocol_message(Msg) when is_tuple(Msg), tuple_size(Msg) > 0, is_atom(element(1, Msg)) ->
    protocol_tag(atom_to_list(element(1, Msg))) orelse seccomp_delegate:carries_code(Msg);
protocol_message(Msg) ->
    seccomp_delegate:carries_code(Msg).

%% Tags the runtime and OTP send: `'$gen_*'', `'EXIT'', `'DOWN'',
%% `'ETS-TRANSFER'' (a `$' or a capital first), and these.
protocol_tag([C | _]) when C =:= $$; C >= $A, C =< $Z -> true;
protocol_tag(Tag) ->
    lists:member(Tag, ["system", "io_request", "io_reply", "timeout", "nodeup", "nodedown",
                       "tcp", "tcp_closed", "tcp_error", "tcp_passive", "udp", "udp_closed",
                       "udp_error", "udp_passive", "ssl", "ssl_closed", "ssl_error", "ssl_passive",
                       "sctp", "file_request", "code_call", "inet_reply", "inet_async"]).

%% @doc `process_info'/`Process.info' of a member, and not of what is private.
-spec info(module(), atom(), list(), seccomp_sandbox_ctx:ctx()) -> term().
info(M, F, [Pid | Items] = Args, Ctx) ->
    MFA = {M, F, length(Args)},
    is_pid(Pid) andalso (Pid =:= self() orelse seccomp_sandbox_members:is_member(Ctx, Pid))
        orelse seccomp_sandbox_verdict:deny(MFA, Ctx),
    case Items of
        [] -> seccomp_sandbox_verdict:deny(MFA, Ctx);
        [Item] ->
            Requested = case is_list(Item) of true -> Item; false -> [Item] end,
            lists:any(fun private_info/1, Requested) andalso seccomp_sandbox_verdict:deny(MFA, Ctx),
            erlang:apply(M, F, Args)
    end.

%% Process information that shows the runner's keeper (links, parent,
%% monitors), what the library keeps in the process (dictionary, stack), or
%% other processes (monitored_by).
private_info(Item) ->
    lists:member(Item, [links, monitors, monitored_by, parent, dictionary, backtrace,
                        current_stacktrace, messages, group_leader]).
