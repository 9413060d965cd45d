%% @doc Funs that sandboxed code makes of `M:F/A' (`fun m:f/a',
%% `&M.f/a', `erlang:make_fun/3'): whoever calls them, compiled code
%% included, the call goes through the sandbox's checks. When the policy
%% allows `M:F/A' and the handler would merely call it, the fun is the plain
%% `fun M:F/A': captures of allowed functions cost what they cost outside
%% the sandbox.
-module(seccomp_sandbox_funs).

-export([wrap/5, returning/3]).

-define(MAX_WRAPPED_ARITY, 12).

%% @doc A fun of arity `A' for `M:F/A' under `Ctx'; `Check' carries out a
%% call (its arguments as a list) through the handler.
-spec wrap(atom(), atom(), arity(), seccomp_sandbox_ctx:ctx(), fun(([term()]) -> term())) -> function().
wrap(M, F, A, Ctx, Check) when is_atom(M), is_atom(F), is_integer(A), A >= 0, A =< ?MAX_WRAPPED_ARITY ->
    case seccomp_sandbox_calls:direct(M, F, A) andalso seccomp_sandbox_verdict:allowed(M, F, A, Ctx) =:= allow of
        true -> erlang:make_fun(M, F, A);
        false -> checking_fun(A, Check)
    end;
wrap(M, F, A, _Ctx, _Check) ->
    erlang:error(badarg, [M, F, A]).

%% @doc A sandboxed fun as compiled code gets it: every call first runs
%% `Enter' (which lets only the sandbox's members on), and what it returns
%% passes `Bound' (the copy bound, see `seccomp_compare') unless it is a
%% scalar.
-spec returning(function(), fun(() -> ok), fun((term()) -> true)) -> function().
returning(Fun, Enter, Bound) when is_function(Fun) ->
    {module, M} = erlang:fun_info(Fun, module),
    {arity, A} = erlang:fun_info(Fun, arity),
    case M =:= erl_eval orelse seccomp_slot_names:is_slot(M) of
        %% Only sandboxed code's own funs: any other is checked where it is called.
        false -> Fun;
        true ->
            A =< ?MAX_WRAPPED_ARITY orelse erlang:error(badarg, [Fun]),
            checking_fun(A, fun(Args) -> Enter(), returned(erlang:apply(Fun, Args), Bound) end)
    end.

returned(R, _Bound) when is_atom(R); is_float(R); is_bitstring(R); is_pid(R); is_reference(R) -> R;
returned(R, _Bound) when is_integer(R), R =< 1 bsl 64, R >= -(1 bsl 64) -> R;
returned(R, Bound) ->
    Bound(R),
    R.

checking_fun(A, H) ->
    case A of
        0 -> fun() -> H([]) end;
        1 -> fun(X1) -> H([X1]) end;
        2 -> fun(X1, X2) -> H([X1, X2]) end;
        3 -> fun(X1, X2, X3) -> H([X1, X2, X3]) end;
        4 -> fun(X1, X2, X3, X4) -> H([X1, X2, X3, X4]) end;
        5 -> fun(X1, X2, X3, X4, X5) -> H([X1, X2, X3, X4, X5]) end;
        6 -> fun(X1, X2, X3, X4, X5, X6) -> H([X1, X2, X3, X4, X5, X6]) end;
        7 -> fun(X1, X2, X3, X4, X5, X6, X7) -> H([X1, X2, X3, X4, X5, X6, X7]) end;
        8 -> fun(X1, X2, X3, X4, X5, X6, X7, X8) -> H([X1, X2, X3, X4, X5, X6, X7, X8]) end;
        9 -> fun(X1, X2, X3, X4, X5, X6, X7, X8, X9) -> H([X1, X2, X3, X4, X5, X6, X7, X8, X9]) end;
        10 -> fun(X1, X2, X3, X4, X5, X6, X7, X8, X9, X10) ->
                      H([X1, X2, X3, X4, X5, X6, X7, X8, X9, X10]) end;
        11 -> fun(X1, X2, X3, X4, X5, X6, X7, X8, X9, X10, X11) ->
                      H([X1, X2, X3, X4, X5, X6, X7, X8, X9, X10, X11]) end;
        12 -> fun(X1, X2, X3, X4, X5, X6, X7, X8, X9, X10, X11, X12) ->
                      H([X1, X2, X3, X4, X5, X6, X7, X8, X9, X10, X11, X12]) end
    end.
