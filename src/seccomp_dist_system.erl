%% @doc Which local processes belong to the runtime and to OTP's own
%% applications: a peer may never link to them, exit them or change their
%% group leader, even when it was shown their pids (as `global' shows its
%% helper processes to every peer).
-module(seccomp_dist_system).

-export([is_system/1, registered_name/1, current_name/1, named/0]).

%% How long the receiver may use its copy of the name registry.
-define(REGISTRY_TTL_MS, 100).

%% @doc Whether `Pid' (a live local process) is a system process: started by
%% the runtime (`erts_*'), by `init' (its group leader is `init'), an
%% application master, or a process of an application installed with OTP
%% (its group leader is that application's master).
-spec is_system(pid()) -> boolean().
is_system(Pid) ->
    case erlang:process_info(Pid, [group_leader, initial_call]) of
        [{group_leader, GL}, {initial_call, {M, _, _}}] ->
            Init = whereis(init),
            GL =:= Init orelse Pid =:= Init orelse runtime_module(M)
                orelse M =:= application_master orelse otp_master(GL);
        _ -> true
    end.

runtime_module(M) -> lists:prefix("erts_", atom_to_list(M)).

otp_master(GL) ->
    case [App || [App] <- ets:match(ac_tab, {{application_master, '$1'}, GL})] of
        [App] -> otp_application(App);
        _ -> false
    end.

%% Remembered per process: the answer does not change while the node runs.
otp_application(App) ->
    case get({?MODULE, App}) of
        undefined ->
            Root = code:root_dir(),
            Otp = case code:lib_dir(App) of
                      Dir when is_list(Dir) -> lists:prefix(filename:join(Root, "lib"), Dir);
                      _ -> false
                  end,
            put({?MODULE, App}, Otp),
            Otp;
        Otp -> Otp
    end.

%% @doc The name `Pid' is registered under (for `global''s helpers, its
%% server's), or `none'. Read from a copy of
%% the registry that the calling process refreshes every
%% `?REGISTRY_TTL_MS': asking the process itself (`process_info/2') waits
%% for it whenever it is running, which would make a receiver as slow as
%% the busiest process it delivers to.
-spec registered_name(pid()) -> atom() | none.
registered_name(Pid) ->
    Now = erlang:monotonic_time(millisecond),
    Registry = case get(?MODULE) of
                   {Since, R} when Now - Since < ?REGISTRY_TTL_MS -> R;
                   _ -> refresh(Now)
               end,
    maps:get(Pid, Registry, none).

%% @doc {@link registered_name/1} from a copy made now: for a process the
%% copy does not name, before anything is let through to it unjudged (a
%% server may have registered since the copy was made, as a kernel server
%% restarting under its name does, then showing peers its new pid).
-spec current_name(pid()) -> atom() | none.
current_name(Pid) -> maps:get(Pid, refresh(erlang:monotonic_time(millisecond)), none).

%% @doc The processes {@link registered_name/1} names, as of now.
-spec named() -> [pid()].
named() -> maps:keys(refresh(erlang:monotonic_time(millisecond))).

refresh(Now) ->
    Named = maps:from_list([{P, N} || N <- registered(), P <- [whereis(N)], is_pid(P)]),
    R = maps:merge(helpers_of(global_name_server, Named), Named),
    put(?MODULE, {Now, R}),
    R.

%% `global''s locker and registrar are unregistered processes linked to
%% global_name_server that it shows its peers (they answer `get_state' with
%% global's state, and act on `cancel', `add_to_known', ...): they are judged
%% as global_name_server is. Every process linked to the server that runs
%% `global''s code (the locker, the
%% registrar, a sync in progress: processes spawned with a fun of `global',
%% so `global' is in their stack whatever they wait in; a locker waiting
%% in `gen_server' for a peer's answer is still the locker) is one, and is
%% remembered for as long as it stays linked to the server.
helpers_of(Name, Named) ->
    Known = case get({?MODULE, helpers}) of undefined -> #{}; H -> H end,
    Helpers = case whereis(Name) of
                  undefined -> #{};
                  Server ->
                      case erlang:process_info(Server, links) of
                          {links, Links} ->
                              maps:from_list([{P, Name} || P <- Links, is_pid(P), node(P) =:= node(),
                                                           not is_map_key(P, Named),
                                                           is_map_key(P, Known) orelse runs_global(P)]);
                          undefined -> #{}
                      end
              end,
    put({?MODULE, helpers}, Helpers),
    Helpers.

runs_global(Pid) ->
    case erlang:process_info(Pid, current_stacktrace) of
        {current_stacktrace, Stack} -> lists:keymember(global, 1, Stack);
        undefined -> false
    end.
