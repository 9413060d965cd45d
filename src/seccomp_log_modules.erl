%% @doc The modules through which code emits log events or changes what the
%% host's logger does: OTP's `logger' and `error_logger', the kernel's
%% `logger_*' modules and the modules of Elixir's Logger application, read
%% from the applications' module lists once per VM. Sandboxed code may call
%% none of them, whatever the policy: in caller mode its events would come
%% from the caller's process (which the log filter does not withhold), and
%% process metadata it set would outlive the run.
-module(seccomp_log_modules).

-export([is_member/1, modules/0]).

%% @doc Whether `M' is one of them.
-spec is_member(module()) -> boolean().
is_member(M) -> is_map_key(M, set()).

%% @doc All of them.
-spec modules() -> [module()].
modules() -> maps:keys(set()).

set() ->
    Key = {?MODULE, set},
    case persistent_term:get(Key, undefined) of
        undefined ->
            Kernel = [M || M <- app_modules(kernel), lists:prefix("logger", atom_to_list(M))],
            %% Elixir's Logger application is named `logger' too.
            Elixir = [M || M <- app_modules(logger), lists:prefix("Elixir.", atom_to_list(M))],
            Set = maps:from_list([{M, true} || M <- [logger, error_logger | Kernel ++ Elixir]]),
            persistent_term:put(Key, Set),
            Set;
        Set ->
            Set
    end.

app_modules(App) ->
    _ = application:load(App),
    case application:get_key(App, modules) of
        {ok, Ms} -> Ms;
        undefined -> []
    end.
