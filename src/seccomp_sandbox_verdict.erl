%% @doc The policy's verdict on a call from sandboxed code, and what a
%% refusal does: the violation is recorded for the run (sticky, even if the
%% code catches it), reported a bounded number of times, and handled by the
%% rule's action.
-module(seccomp_sandbox_verdict).

-include("seccomp_sandbox.hrl").

-export([allowed/4, guarded/5, deny/2]).

%% @doc The verdict of the context's policy (or the process's own layers).
-spec allowed(module(), atom(), arity(), seccomp_sandbox_ctx:ctx()) -> allow | {deny, atom()}.
allowed(M, F, Arity, #ctx{policy = none}) -> seccomp_nif:check(M, F, Arity);
allowed(M, F, Arity, #ctx{policy = Policy}) -> seccomp_nif:check_with(Policy, M, F, Arity).

%% @doc `Proceed()' when `M:F/Arity' is allowed, else what the rule's action says.
-spec guarded(module(), atom(), arity(), fun(() -> term()), seccomp_sandbox_ctx:ctx()) -> term().
guarded(M, F, Arity, Proceed, Ctx) ->
    case allowed(M, F, Arity, Ctx) of
        allow -> Proceed();
        {deny, Action} -> violation(Action, {M, F, Arity}, Proceed, Ctx)
    end.

violation(Action, MFA, Proceed, Ctx) ->
    %% Sticky: the run reports the violation even if the code catches it.
    Action =:= log orelse seccomp_sandbox_ctx:record_violation(MFA, Ctx),
    case Action =:= log orelse Action =:= error of
        true ->
            case seccomp_sandbox_ctx:reported(Ctx) of
                true -> seccomp_violation:handle(Action, MFA, Proceed);
                false when Action =:= log -> Proceed();
                false -> erlang:error({seccomp_violation, MFA})
            end;
        false ->
            seccomp_violation:handle(Action, MFA, Proceed)
    end.

%% @doc Refuse `MFA', whatever the policy says.
-spec deny(mfa(), seccomp_sandbox_ctx:ctx()) -> no_return().
deny(MFA, Ctx) ->
    seccomp_sandbox_ctx:record_violation(MFA, Ctx),
    case seccomp_sandbox_ctx:reported(Ctx) of
        true -> seccomp_violation:refuse(MFA);
        false -> erlang:error({seccomp_violation, MFA})
    end.
