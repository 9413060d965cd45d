%% @doc Functions that change the node for everyone, refused to restricted
%% callers unless the policy allows them explicitly.
%%
%% Starting, stopping or loading applications (an application's `mod' is
%% applied by its master, unrestricted), changing any application's
%% environment (where policies, and this library's settings, live),
%% configuring the logger (a handler writes files, a filter runs a fun in
%% every process that logs) and enabling distribution or changing the
%% cookie each act outside the caller, so a blacklist that does not name
%% them does not grant them: only a caller whose every layer is a whitelist
%% (which named them) may. The sets are read from the modules' exports: in
%% `application' and `Application' everything but what reads, in `logger'
%% and `Logger' everything that adds, removes, sets, updates or
%% reconfigures, and the distribution modules as a whole.
-module(seccomp_sensitive).

-export([check/1, is_sensitive/1]).

%% Distribution, the cookie, and the servers behind `application' and `logger'.
-define(DIST_MODULES, [net_kernel, auth, erl_epmd, erl_distribution, net_adm, global_group,
                       application_controller, application_master, application_starter,
                       logger_server, logger_config, logger_backend, logger_std_h,
                       logger_disk_log_h, logger_h_common, logger_olp, logger_proxy]).
%% Name prefixes of the functions that only read.
-define(READERS, ["get_", "fetch_", "which_", "loaded_", "started_", "info", "spec", "app_dir",
                  "get_application", "get_key", "get_env", "get_all_env", "compile_env",
                  "format_error"]).
-define(CHANGERS, ["add_", "remove_", "set_", "update_", "unset_", "reconfigure", "configure",
                   "put_", "delete_", "compare_and_", "enable", "disable"]).

%% @doc `ok' when the caller may call `MFA'; refused otherwise.
-spec check(mfa()) -> ok.
check(MFA) ->
    case is_sensitive(MFA) andalso not all_whitelists() of
        true -> seccomp_violation:refuse(MFA);
        false -> ok
    end.

%% @doc Whether `MFA' changes the node for everyone (see the module doc).
-spec is_sensitive(mfa()) -> boolean().
is_sensitive({M, F, _}) when M =:= application; M =:= 'Elixir.Application' ->
    not prefixed(F, ?READERS);
is_sensitive({M, F, _}) when M =:= logger; M =:= 'Elixir.Logger' ->
    prefixed(F, ?CHANGERS);
is_sensitive({'Elixir.Node', F, _}) ->
    lists:member(F, [start, stop, set_cookie]);
is_sensitive({erlang, F, _}) ->
    F =:= set_cookie;
is_sensitive({M, _, _}) ->
    lists:member(M, ?DIST_MODULES).

prefixed(F, Prefixes) ->
    Name = atom_to_list(F),
    lists:any(fun(P) -> lists:prefix(P, Name) end, Prefixes).

%% Every layer of the caller is a whitelist: what it allows, it named.
all_whitelists() ->
    case seccomp_nif:status(self()) of
        {Bins, _, _} ->
            lists:all(fun(B) -> maps:get(mode, seccomp_policy:from_spec_binary(B)) =:= whitelist end, Bins);
        _ ->
            true
    end.
