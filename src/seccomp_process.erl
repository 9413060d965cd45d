%% @doc The restriction state of local processes: giving layers, reading them,
%% and the tracer that makes every child of a restricted process inherit.
%%
%% Whenever a process gets layers here, it is also traced by `seccomp_nif'
%% as its erl_tracer with `set_on_spawn': the tracer callback runs in the
%% parent while it spawns and gives the child the parent's inheritable
%% layers before the child runs, whatever function spawned it (the spawn
%% BIFs, `proc_lib', `gen_server:start', `Task', a dependency...). Children
%% inherit the tracer, so their children inherit too.
-module(seccomp_process).

-export([restrict_self/1, restrict/2, adopt/1, adopt_pid/2, is_restricted/1, status/1,
         tracer/1, trace/1, ensure_traced/0]).

-export_type([tracer/0]).

%% `on': children inherit by construction; `off': someone cleared the trace
%% flags (as clearing `dbg' does); `{other, T}': another tracer holds the process.
-type tracer() :: on | off | {other, term()}.

-define(FLAGS, [procs, set_on_spawn]).

%% @doc Add a layer to the caller.
-spec restrict_self(reference()) -> ok.
restrict_self(Native) ->
    ok = seccomp_nif:restrict_self(Native),
    _ = trace(self()),
    ok.

%% @doc Add a layer to another process (only an unrestricted caller may).
-spec restrict(pid(), reference()) -> ok | {error, not_permitted | noproc}.
restrict(Pid, Native) ->
    traced(Pid, seccomp_nif:restrict(Pid, Native)).

%% @doc Take on a ticket's layers (in the process that starts with them).
-spec adopt(reference()) -> ok.
adopt(Ticket) ->
    ok = seccomp_nif:adopt(Ticket),
    _ = trace(self()),
    ok.

%% @doc Give another process a ticket's layers (only an unrestricted caller may).
-spec adopt_pid(pid(), reference()) -> ok | {error, not_permitted | noproc}.
adopt_pid(Pid, Ticket) ->
    traced(Pid, seccomp_nif:adopt_pid(Pid, Ticket)).

traced(Pid, ok) -> _ = trace(Pid), ok;
traced(_Pid, Error) -> Error.

%% @doc Turn the inheriting tracer on for `Pid'. A process has one tracer:
%% when another holds it, the answer says so (and checked calls of a
%% restricted process are refused until it is released, see {@link ensure_traced/0}).
-spec trace(pid()) -> ok | {error, noproc | {tracer_in_use, term()}}.
trace(Pid) ->
    try erlang:trace(Pid, true, [{tracer, seccomp_nif, []} | ?FLAGS]) of
        _ -> ok
    catch
        error:badarg ->
            case tracer(Pid) of
                undefined -> {error, noproc};
                on -> ok;
                off -> {error, noproc};
                {other, T} -> {error, {tracer_in_use, T}}
            end
    end.

%% @doc Which tracer holds `Pid' (`undefined' when it is gone).
-spec tracer(pid()) -> tracer() | undefined.
tracer(Pid) ->
    case {trace_info(Pid, tracer), trace_info(Pid, flags)} of
        {undefined, _} -> undefined;
        {_, undefined} -> undefined;
        {{tracer, []}, _} -> off;
        {{tracer, T}, {flags, Flags}} ->
            case {T, ?FLAGS -- Flags} of
                {{seccomp_nif, []}, []} -> on;
                {{seccomp_nif, []}, _} -> off;
                _ -> {other, T}
            end
    end.

%% OTP's spec of erlang:trace_info/2 leaves out what a tracer module answers
%% (`{Module, State}', and the flags it was given): read it as any term.
-spec trace_info(pid(), tracer | flags) -> term().
trace_info(Pid, Item) -> erlang:apply(erlang, trace_info, [Pid, Item]).

%% @doc For the checked apply of a restricted caller: the tracer must be on
%% before anything runs, so a call cannot start a free process. Tampering is
%% repaired; another tracer is a clear error (fail closed).
%%
%% It runs on every checked call, so it reads the caller's own trace flags
%% (cheap); only when they lack ours does it ask who the tracer is
%% (`erlang:trace_info/2' costs microseconds). A process's tracer can only
%% be replaced after its flags are cleared, which an unrestricted process
%% may do; `status/1' shows who holds it.
-spec ensure_traced() -> ok.
ensure_traced() ->
    {trace, Flags} = process_info(self(), trace),
    Want = traced_mask(),
    case Flags band Want of
        Want -> ok;
        _ -> repair()
    end.

repair() ->
    case tracer(self()) of
        on -> ok;
        _ ->
            case trace(self()) of
                ok -> ok;
                {error, Why} -> erlang:error({seccomp_inheritance, Why})
            end
    end.

%% The trace flag bits our tracer sets (internal to the VM: read once from a
%% process traced for the purpose).
traced_mask() ->
    case persistent_term:get({?MODULE, mask}, undefined) of
        undefined ->
            P = spawn(fun() -> receive stop -> ok end end),
            erlang:trace(P, true, [{tracer, seccomp_nif, []} | ?FLAGS]),
            {trace, Mask} = process_info(P, trace),
            P ! stop,
            persistent_term:put({?MODULE, mask}, Mask),
            Mask;
        Mask ->
            Mask
    end.

%% @doc Whether a local process carries at least one layer.
-spec is_restricted(pid()) -> boolean().
is_restricted(Pid) -> seccomp_nif:is_restricted(Pid).

%% @doc See {@link seccomp:status/1}.
-spec status(pid()) -> seccomp:status() | {error, noproc}.
status(Pid) ->
    case is_process_alive(Pid) andalso seccomp_nif:status(Pid) of
        false ->
            {error, noproc};
        undefined ->
            #{mode => disabled, layers => [], no_spawn => false, inherit => false,
              checks => 0, denials => 0, tracer => tracer_or_off(Pid)};
        {Bins, Checks, Denials} ->
            Layers = [seccomp_policy:from_spec_binary(B) || B <- Bins],
            #{mode => filter, layers => Layers,
              no_spawn => lists:any(fun(#{no_spawn := S}) -> S end, Layers),
              inherit => lists:any(fun(#{inherit := I}) -> I end, Layers),
              checks => Checks, denials => Denials,
              tracer => tracer_or_off(Pid)}
    end.

tracer_or_off(Pid) ->
    case tracer(Pid) of
        undefined -> off;
        T -> T
    end.
