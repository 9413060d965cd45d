%% @doc A restricted shell: each line is evaluated in the sandbox under the
%% same policy and limits, and bindings carry over from line to line.
-module(seccomp_shell).

-export([start/0, start/1, eval_line/3, command/1]).

%% @doc Start an interactive loop on the current group leader. `Opts' are
%% {@link seccomp_eval:eval/2} options (language defaults to `erlang').
-spec start() -> ok.
start() -> start(#{}).

-spec start(map()) -> ok.
start(Opts) ->
    Lang = maps:get(language, Opts, erlang),
    io:format("beam_seccomp restricted shell (~s, policy ~p). Quit with q() or end of input.~n",
              [Lang, maps:get(policy, Opts, pure)]),
    loop(Opts#{language => Lang}, maps:get(bindings, Opts, []), 1).

loop(Opts, Bindings, N) ->
    Prompt = io_lib:format("seccomp(~b)> ", [N]),
    case command(io:get_line(Prompt)) of
        quit -> ok;
        empty -> loop(Opts, Bindings, N);
        {eval, Code} ->
            {Text, Bindings1} = eval_line(Code, Bindings, Opts),
            io:put_chars([Text, $\n]),
            loop(Opts, Bindings1, N + 1)
    end.

%% @doc What a line read by the shell asks for. Lines are charlists or, when
%% the group leader is in binary mode (under Mix), binaries.
-spec command(string() | binary() | eof | {error, term()}) -> quit | empty | {eval, string()}.
command(eof) -> quit;
command({error, _}) -> quit;
command(Line) ->
    case unicode:characters_to_list(string:trim(Line)) of
        "" -> empty;
        "q()" -> quit;
        "q()." -> quit;
        Code when is_list(Code) -> {eval, Code};
        _NotUnicode -> {eval, Line}
    end.

%% @doc Evaluate one line; returns the text to print and the new bindings.
-spec eval_line(string() | binary(), list(), map()) -> {iodata(), list()}.
eval_line(Code, Bindings, Opts) ->
    case seccomp_eval:eval(Code, Opts#{bindings => Bindings, output => capture}) of
        {ok, Value, NewBindings, Output} ->
            {[Output, show(Value, maps:get(language, Opts, erlang))], NewBindings};
        {error, Reason} ->
            {io_lib:format("** refused: ~tp", [Reason]), Bindings}
    end.

show(Value, elixir) -> 'Elixir.Kernel':inspect(Value);
show(Value, erlang) -> io_lib:format("~tp", [Value]).
