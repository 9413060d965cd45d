%% @doc The watcher of caller-mode runs on runtimes whose heap limit cannot
%% count binaries (before OTP 27, no `include_shared_binaries').
%%
%% A caller-mode run has no keeper: its binaries are counted where a check
%% lets it allocate one (`seccomp_caller_binaries'), but a loop of direct
%% library calls (`base64:encode/1' on a large binary, in a comprehension)
%% passes no check. While any run is under way this process samples every
%% running caller's binaries every ?POLL ms; past the run's allowance it
%% collects the caller's garbage and, if still past it, kills the caller,
%% as the heap limit would. Idle, it waits for the next run.
-module(seccomp_caller_watch).

-export([start_link/0, watch/1, unwatch/0]).

-define(TABLE, ?MODULE).
-define(ACTIVE, '$active').
-define(POLL, 5).

%% @doc Start the watcher (the library's supervisor does).
-spec start_link() -> {ok, pid()}.
start_link() ->
    Parent = self(),
    Pid = proc_lib:spawn_link(fun() -> init(Parent) end),
    receive {?MODULE, ready} -> {ok, Pid} end.

init(Parent) ->
    register(?MODULE, self()),
    _ = ets:new(?TABLE, [named_table, public, set, {write_concurrency, true}]),
    ets:insert(?TABLE, {?ACTIVE, 0}),
    Parent ! {?MODULE, ready},
    idle().

idle() ->
    receive wake -> poll() end.

poll() ->
    case ets:lookup_element(?TABLE, ?ACTIVE, 2) of
        0 ->
            idle();
        _ ->
            ets:foldl(fun check/2, ok, ?TABLE),
            receive wake -> ok after ?POLL -> ok end,
            poll()
    end.

check({?ACTIVE, _}, ok) ->
    ok;
check({Pid, Allowance}, ok) ->
    case over(Pid, Allowance) of
        gone -> forget(Pid);
        true -> _ = garbage_collect(Pid), over(Pid, Allowance) =:= true andalso exit(Pid, kill);
        false -> ok
    end,
    ok.

over(Pid, Allowance) ->
    case seccomp_vheap:bytes(Pid) of
        undefined -> gone;
        Bytes -> Bytes > Allowance
    end.

%% @doc Watch the calling process's binaries until {@link unwatch/0}: killed
%% once they pass `Allowance' bytes.
-spec watch(non_neg_integer()) -> ok.
watch(Allowance) ->
    true = ets:insert(?TABLE, {self(), Allowance}),
    case ets:update_counter(?TABLE, ?ACTIVE, 1) of
        1 -> ?MODULE ! wake, ok;
        _ -> ok
    end.

%% @doc Stop watching the calling process.
-spec unwatch() -> ok.
unwatch() -> forget(self()).

%% A run ended, or its caller did without ending it (killed).
forget(Pid) ->
    case ets:take(?TABLE, Pid) of
        [_] -> _ = ets:update_counter(?TABLE, ?ACTIVE, -1), ok;
        [] -> ok
    end.
