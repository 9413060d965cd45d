%% EUnit tests of printing from sandboxed Erlang code: it reaches the
%% sandbox's own output capture and nothing else (no other device, not the
%% host's console, not in caller mode).
-module(seccomp_output_tests).
-include_lib("eunit/include/eunit.hrl").

-define(DENYLIST, #{mode => blacklist, rules => [os, file, code, {erlang, halt, '_'}]}).

%% Each group may wait for the first derivation of the call graph's sets
%% (seconds): 120 s each. The refusals are logged by design: not in the
%% test output.
setup() ->
    {ok, _} = application:ensure_all_started(beam_seccomp),
    ok = seccomp_spawners:ensure(),
    #{level := Level} = logger:get_primary_config(),
    ok = logger:set_primary_config(level, error),
    Level.

cleanup(Level) -> logger:set_primary_config(level, Level).

eval(Code, Opts) -> seccomp_eval:eval(Code, maps:merge(#{language => erlang}, Opts)).

%% Each test has a timeout of its own (EUnit's 5 s default applies to every
%% test of a group): the first sandbox of a VM may derive the call graph,
%% the first denylist its closure.

%% Printed text comes back with `output => capture', in both profiles.
captured_test_() ->
    {timeout, 120, {setup, fun setup/0, fun cleanup/1,
     [{timeout, 60, ?_assertEqual({ok, ok, [], Text}, eval(Code, #{policy => P, output => capture}))}
      || P <- [pure, processes],
         {Code, Text} <- [{"io:format(\"a~p~n\", [1]).", <<"a1\n">>},
                          {"io:format(\"plain~n\").", <<"plain\n">>},
                          {"io:fwrite(standard_io, \"~s\", [\"w\"]).", <<"w">>},
                          {"io:put_chars(\"pc\").", <<"pc">>},
                          {"io:put_chars(standard_io, [\"a\", <<\"b\">>]).", <<"ab">>},
                          {"io:nl().", <<"\n">>},
                          {"io:write({x, 1}).", <<"{x,1}">>}]]}}.

%% The default keeps the three-element result; the host's console gets nothing.
default_shape_test_() ->
    {timeout, 120, {setup, fun setup/0, fun cleanup/1,
     ?_assertEqual({{ok, ok, []}, <<>>},
                   on_own_console(fun() -> eval("io:format(\"hidden~n\").", #{}) end))}}.

%% Any device other than the standard output is refused, whatever the
%% policy, and so is every other function of `io'.
other_devices_test_() ->
    {timeout, 120, {setup, fun setup/0, fun cleanup/1,
     [{timeout, 60, ?_assertMatch({{error, {seccomp_violation, {io, _, _}}}, <<>>},
                                  on_own_console(fun() -> eval(Code, #{policy => P, output => capture}) end))}
      || P <- [pure, processes, ?DENYLIST],
         Code <- ["io:format(standard_error, \"x\", []).",
                  "io:format(user, \"x\", []).",
                  "io:put_chars(standard_error, \"x\").",
                  "io:nl(user).",
                  "io:request(standard_error, {put_chars, unicode, <<\"x\">>}).",
                  "io:requests(user, [{put_chars, unicode, <<\"x\">>}]).",
                  "io:get_line(\"> \").",
                  "io:setopts([binary])."]]}}.

%% The BIFs that write to the VM's own console (every `erlang:display*' of
%% the running OTP) are refused, whatever the policy.
console_bifs_test_() ->
    {timeout, 120, {setup, fun setup/0, fun cleanup/1,
     [{timeout, 60, ?_assertMatch({error, {seccomp_violation, {erlang, F, A}}},
                                  eval(lists:flatten(io_lib:format("erlang:~p(~s).", [F, display_args(A)])),
                                       #{policy => P}))}
      || P <- [pure, processes, ?DENYLIST],
         {F, A} <- erlang:module_info(exports), lists:prefix("display", atom_to_list(F))]}}.

display_args(0) -> "";
display_args(1) -> "\"x\"";
display_args(2) -> "\"x\", stdout".

%% A pid as the device (one of the sandbox's own processes).
pid_device_test_() ->
    {timeout, 120, {setup, fun setup/0, fun cleanup/1,
     ?_assertEqual({error, {seccomp_violation, {io, format, 3}}},
                   eval("P = spawn(fun() -> receive _ -> ok end end), io:format(P, \"x\", []).",
                        #{policy => processes}))}}.

%% Prepared code run in the caller prints nowhere: the caller's group
%% leader (the host's console) gets nothing, the value is unchanged.
caller_mode_test_() ->
    {timeout, 120, {setup, fun setup/0, fun cleanup/1,
     ?_assertEqual({{ok, 42, []}, <<>>},
                   on_own_console(fun() ->
                                          {ok, P} = seccomp_eval:prepare("io:format(\"x~n\"), 42.",
                                                                         #{language => erlang, mode => caller}),
                                          try seccomp_eval:run(P, [])
                                          after seccomp_eval:release(P)
                                          end
                                  end))}}.

%% Run Fun with a fresh group leader that records what reaches it (the
%% console of the process that calls eval), and standard_error replaced
%% by nothing: its result and the recorded text.
on_own_console(Fun) ->
    Console = seccomp_capture:start(65536),
    Old = group_leader(),
    group_leader(Console, self()),
    try Fun() of
        Result -> {Result, seccomp_capture:take(Console)}
    after
        group_leader(Old, self())
    end.
