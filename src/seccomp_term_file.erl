%% @doc Reads a file that holds exactly one Erlang term, ended by a dot,
%% with `prim_file': it works before the file server runs (distribution, and
%% what it loads, start earlier in the kernel's boot).
-module(seccomp_term_file).

-export([read/1]).

-spec read(file:filename_all()) -> {ok, term()} | {error, term()}.
read(Path) ->
    case prim_file:read_file(Path) of
        {ok, Bin} ->
            case unicode:characters_to_list(Bin) of
                Text when is_list(Text) ->
                    case erl_scan:string(Text) of
                        {ok, Tokens, _} -> parse(Tokens);
                        {error, Info, _} -> {error, {scan, Info}}
                    end;
                _ -> {error, not_utf8}
            end;
        {error, _} = E -> E
    end.

%% Exactly one term, ended by a dot.
parse(Tokens) ->
    case lists:splitwith(fun(T) -> element(1, T) =/= dot end, Tokens) of
        {Term, [Dot]} ->
            case erl_parse:parse_term(Term ++ [Dot]) of
                {ok, T} -> {ok, T};
                {error, Info} -> {error, {parse, Info}}
            end;
        _ -> {error, not_one_term}
    end.
