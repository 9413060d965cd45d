%% @doc How a run ends: its value, or an error result for an exception, a
%% violation the code caught, or a value too large to leave the sandbox.
%% Prepared code runs here, in the calling process (a pool's runner, or
%% the caller in caller mode).
-module(seccomp_outcome).

-export([execute/5, caught/4, caught/5, sticky/2]).

%% @doc Run the prepared module in the calling process.
-spec execute(module(), pos_integer(), map(), seccomp_sandbox_ctx:ctx(), seccomp_source:language()) ->
          {ok, term(), map()} | {error, seccomp_prepare:reason()}.
execute(Mod, Gen, Inputs, Ctx, Lang) ->
    try Mod:run(Gen, Inputs, Ctx) of
        {Value, Bound} -> seccomp_sandbox_ctx:bounded_result({ok, Value, Bound}, Ctx);
        released -> {error, released}
    catch
        Class:Reason:Stack -> unloaded(Mod, Class, Reason, Stack, Lang, Ctx)
    end.

%% The slot's code was deleted between the lookup and the call.
unloaded(Mod, error, undef, [{Mod, run, _, _} | _], _Lang, _Ctx) -> {error, released};
unloaded(_Mod, Class, Reason, Stack, Lang, Ctx) -> caught(Lang, Class, Reason, Stack, Ctx).

%% @doc A violation the code caught still decides the result.
-spec sticky(none | mfa(), Result) -> Result | {error, {seccomp_violation, mfa()}}.
sticky(none, Result) -> Result;
sticky(MFA, _Result) -> {error, {seccomp_violation, MFA}}.

%% @doc An exception from running sandboxed code, as an error result,
%% unless it is too large to format or copy out of the sandbox.
-spec caught(seccomp_source:language(), error | exit | throw, term(), list(), seccomp_sandbox_ctx:ctx()) ->
          {error, seccomp_eval:reason()}.
caught(Lang, Class, Reason, Stack, Ctx) ->
    case seccomp_sandbox_ctx:copyable({Reason, Stack}, Ctx) of
        true -> caught(Lang, Class, Reason, Stack);
        false -> {error, memory_limit}
    end.

%% @doc An exception as an error result: the front end's errors, violations
%% and limits as they are; anything else described from an inert copy.
-spec caught(seccomp_source:language(), error | exit | throw, term(), list()) -> {error, seccomp_eval:reason()}.
caught(_Lang, throw, {seccomp_eval_error, Reason}, _Stack) ->
    {error, Reason};
caught(_Lang, error, {seccomp_violation, MFA}, _Stack) ->
    {error, {seccomp_violation, MFA}};
caught(_Lang, error, Limit, _Stack)
  when Limit =:= atom_limit; Limit =:= memory_limit; Limit =:= process_limit ->
    {error, Limit};
caught(Lang, Class, Reason, Stack) ->
    %% Formatting runs host code on the reason: only on an inert copy of it.
    {Normal, Text} = seccomp_inert:describe(Lang, Class, Reason, Stack),
    {error, {exception, Class, Normal, Text}}.
