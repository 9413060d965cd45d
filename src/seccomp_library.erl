%% @doc This library's own registered servers, found so that a process
%% that took one of their names (after the server stopped) is not talked to.
-module(seccomp_library).

-export([server/1]).

%% @doc The pid of the library's server registered as `Name' (the name is
%% its module), or `undefined' when no process, or another, holds the name:
%% the server is a `gen_server' of that module started by `beam_seccomp_sup'.
-spec server(atom()) -> pid() | undefined.
server(Name) ->
    case whereis(Name) of
        undefined -> undefined;
        Pid ->
            Sup = whereis(beam_seccomp_sup),
            case process_info(Pid, [dictionary, parent]) of
                [{dictionary, D}, {parent, Sup}] when is_pid(Sup) ->
                    case proplists:get_value('$initial_call', D) of
                        {Name, init, 1} -> Pid;
                        _ -> undefined
                    end;
                _ ->
                    undefined
            end
    end.
