%% @doc What a policy leaves open: for each class of escape-capable calls,
%% which of its functions the policy (with the guard) lets a process make.
%%
%% A blacklist closes what it names and nothing else; this shows a user at
%% once which doors stay open. The functions of each class are read from the
%% installed modules (`module_info(exports)'), by module or by name, so a
%% function added to OTP is counted without an edit here.
-module(seccomp_capabilities).

-export([granted/1, classes/0, functions/1]).

-export_type([class/0]).

-type class() :: start_processes | send_anywhere | apply_data | files | os_commands | ports
               | code_loading | ets | atoms | distribution.

%% @doc Every class, in report order.
-spec classes() -> [class()].
classes() ->
    [start_processes, send_anywhere, apply_data, files, os_commands, ports, code_loading, ets,
     atoms, distribution].

%% @doc For each class, the functions of it that `Policy' allows (a call that
%% is logged or asks a broker counts as allowed: it can go through).
-spec granted(seccomp_policy:t()) -> #{class() => [mfa()]}.
granted(Policy) ->
    Native = seccomp_policy:native(Policy),
    maps:from_list([{C, [MFA || MFA <- functions(C), open(Native, MFA)]} || C <- classes()]).

open(Native, {M, F, A}) ->
    case seccomp_nif:check_with(Native, M, F, A) of
        allow -> true;
        {deny, log} -> true;
        {deny, {trap, _}} -> true;
        {deny, _} -> false
    end.

%% @doc The functions of a class, as installed.
-spec functions(class()) -> [mfa()].
functions(start_processes) ->
    named(erlang, ["spawn"]) ++ named(proc_lib, ["spawn", "start"]) ++
        named(gen_server, ["start"]) ++ named(gen_statem, ["start"]) ++
        named(gen_event, ["start"]) ++ named(supervisor, ["start"]) ++
        named(timer, ["apply_"]) ++ all('Elixir.Task') ++ all('Elixir.Agent') ++
        all('Elixir.Task.Supervisor') ++ named('Elixir.DynamicSupervisor', ["start"]) ++
        named('Elixir.Supervisor', ["start"]) ++ named('Elixir.GenServer', ["start"]);
functions(send_anywhere) ->
    named(erlang, ["send", "!"]) ++ named(erlang, ["start_timer"]) ++
        named(gen_server, ["call", "cast", "multi_call", "abcast", "send_request"]) ++
        named(gen_statem, ["call", "cast", "send_request"]) ++ named(gen, ["call"]) ++
        named('Elixir.Kernel', ["send"]) ++ named('Elixir.Process', ["send"]) ++
        named('Elixir.GenServer', ["call", "cast"]);
functions(apply_data) ->
    named(erlang, ["apply", "make_fun"]) ++ named('Elixir.Kernel', ["apply"]) ++
        named('Elixir.Function', ["capture"]);
functions(files) ->
    all(file) ++ all(filelib) ++ all('Elixir.File');
functions(os_commands) ->
    named(os, ["cmd", "putenv", "unsetenv", "set_signal"]) ++ named('Elixir.System', ["cmd", "shell", "put_env", "delete_env"]);
functions(ports) ->
    named(erlang, ["open_port", "port_"]) ++ all('Elixir.Port');
functions(code_loading) ->
    all(code) ++ named(erlang, ["load_", "purge_module", "delete_module", "finish_loading"]) ++
        all(compile) ++ all('Elixir.Code');
functions(ets) ->
    all(ets) ++ all(dets);
functions(atoms) ->
    [MFA || {_, F, _} = MFA <- all(erlang) ++ all('Elixir.String') ++ all('Elixir.List'),
            creates_atoms(atom_to_list(F))];
functions(distribution) ->
    all(net_kernel) ++ all(rpc) ++ all(erpc) ++ all(global) ++ all('Elixir.Node') ++
        named(erlang, ["disconnect_node", "set_cookie", "monitor_node"]).

creates_atoms(Name) ->
    lists:suffix("to_atom", Name) andalso string:find(Name, "existing") =:= nomatch.

%% The exports of a module whose names start with one of `Prefixes'.
named(M, Prefixes) ->
    [MFA || {_, F, _} = MFA <- all(M), lists:any(fun(P) -> lists:prefix(P, atom_to_list(F)) end, Prefixes)].

%% The exports of an installed module ([] when it is not installed).
all(M) ->
    case code:ensure_loaded(M) of
        {module, M} ->
            [{M, F, A} || {F, A} <- M:module_info(exports), F =/= module_info, F =/= '__info__'];
        _ ->
            []
    end.
