%% The value `catch Expr' gives, without the construct OTP 28+ deprecates:
%% tests compare results of calls that may fail as terms.
caught(Fun) ->
    try Fun()
    catch
        throw:Thrown -> Thrown;
        exit:Reason -> {'EXIT', Reason};
        error:Reason:Stack -> {'EXIT', {Reason, Stack}}
    end.
