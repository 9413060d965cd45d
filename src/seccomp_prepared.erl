%% @doc The module slots of prepared code.
%%
%% Prepared code is compiled into modules named `'$seccomp_prepared_N''
%% for N up to `max_prepared' (application environment, default 1000), so
%% preparing and releasing never grows the atom table or the loaded-module
%% count past that bound. A slot holds one generation of code at a time; the
%% generation is compiled into the code, so a stale prepared value never runs
%% whatever a slot holds next.
%%
%% One owner (the process that calls `prepare') holds at most
%% `max_prepared_per_owner' slots (application environment, default 100), so
%% no single caller can take every slot and deny everyone else.
%%
%% A slot is freed on release or when the process that prepared it dies: its
%% pool is stopped and its code deleted at once, so no new run can start.
%% Purging checks every process in the VM, so it happens in the background,
%% one slot at a time, and never kills anything: a slot whose old code some
%% process still runs (a caller-mode run in flight) waits for that run to end.
-module(seccomp_prepared).
-behaviour(gen_server).

-export([start_link/0, reserve/1, load/3, attach/3, release/2, in_use/0]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2]).

-define(SERVER, ?MODULE).
-define(DEFAULT_MAX, 1000).
-define(DEFAULT_MAX_PER_OWNER, 100).
-define(RETRY_MS, 200).

-type slot() :: pos_integer().
-export_type([slot/0]).

%% @private
-spec start_link() -> {ok, pid()} | {error, term()}.
start_link() -> gen_server:start_link({local, ?SERVER}, ?MODULE, [], []).

%% @doc Take a free slot for code prepared by `Owner'.
-spec reserve(pid()) -> {ok, slot(), module(), pos_integer()}
                        | {error, {prepare_limit, count | owner, pos_integer()}}.
reserve(Owner) -> call({reserve, Owner}).

%% @doc Load compiled code into a reserved slot.
-spec load(slot(), pos_integer(), binary()) -> ok | {error, term()}.
load(Slot, Gen, Binary) -> call({load, Slot, Gen, Binary}).

%% @doc Tell the slot which pool processes to stop when it is released.
-spec attach(slot(), pos_integer(), [pid()]) -> ok.
attach(Slot, Gen, Pids) -> call({attach, Slot, Gen, Pids}).

%% @doc Free a slot (a no-op when that generation is already gone).
-spec release(slot(), pos_integer()) -> ok.
release(Slot, Gen) -> call({release, Slot, Gen}).

%% @doc How many slots hold live prepared code, and how many are draining.
%% Only this library's own server is asked (and handed code): a process
%% that took the name after the server stopped is not.
call(Request) ->
    case seccomp_library:server(?SERVER) of
        undefined -> exit({noproc, {?MODULE, Request}});
        Pid -> gen_server:call(Pid, Request, infinity)
    end.

-spec in_use() -> #{live := non_neg_integer(), draining := non_neg_integer(), max := pos_integer()}.
in_use() -> call(in_use).

%%% Server ------------------------------------------------------------------------

%% @private
init([]) ->
    seccomp_pool:init_table(),
    {ok, #{max => max_prepared(), next => 1, free => [], used => #{}, owners => #{}, draining => [],
           draining_soon => false, held => #{}}}.

%% @private
handle_call({reserve, Owner}, _From, #{held := Held} = S0) ->
    Max = max_prepared(),
    Quota = max_per_owner(),
    S = S0#{max := Max},
    case maps:get(Owner, Held, 0) < Quota andalso take_slot(S) of
        false ->
            {reply, {error, {prepare_limit, owner, Quota}}, S};
        {ok, Slot, S1} ->
            Gen = erlang:unique_integer([positive]),
            Mon = monitor(process, Owner),
            Entry = #{gen => Gen, mon => Mon, pool => [], owner => Owner},
            S2 = S1#{used := maps:put(Slot, Entry, maps:get(used, S1)),
                     owners := maps:put(Mon, Slot, maps:get(owners, S1)),
                     held := maps:update_with(Owner, fun(N) -> N + 1 end, 1, Held)},
            {reply, {ok, Slot, seccomp_slot_names:name(Slot), Gen}, S2};
        none ->
            {reply, {error, {prepare_limit, count, Max}}, S}
    end;
handle_call({load, Slot, Gen, Binary}, _From, S) ->
    case current(Slot, Gen, S) of
        {ok, _} ->
            Mod = seccomp_slot_names:name(Slot),
            case code:load_binary(Mod, "prepared", Binary) of
                {module, Mod} -> {reply, ok, S};
                {error, Why} -> {reply, {error, {load_failed, Why}}, free_slot(Slot, S)}
            end;
        error ->
            {reply, {error, released}, S}
    end;
handle_call({attach, Slot, Gen, Pids}, _From, S) ->
    case current(Slot, Gen, S) of
        {ok, Entry} ->
            {reply, ok, S#{used := maps:put(Slot, Entry#{pool := Pids}, maps:get(used, S))}};
        error ->
            seccomp_pool:stop(Pids),
            {reply, ok, S}
    end;
handle_call({release, Slot, Gen}, _From, S) ->
    case current(Slot, Gen, S) of
        {ok, _} -> {reply, ok, free_slot(Slot, S)};
        error -> {reply, ok, S}
    end;
handle_call(in_use, _From, #{used := Used, draining := Draining, max := Max} = S) ->
    {reply, #{live => map_size(Used), draining => length(Draining), max => Max}, S}.

%% @private
handle_cast(_Msg, S) -> {noreply, S}.

%% @private
handle_info({'DOWN', Mon, process, _, _}, #{owners := Owners} = S) ->
    case maps:take(Mon, Owners) of
        {Slot, Owners1} -> {noreply, free_slot(Slot, S#{owners := Owners1})};
        error -> {noreply, S}
    end;
handle_info(drain, S) ->
    {noreply, drain_one(S#{draining_soon := false})};
handle_info(_Other, S) ->
    {noreply, S}.

%%% Slots -------------------------------------------------------------------------

max_prepared() -> application:get_env(beam_seccomp, max_prepared, ?DEFAULT_MAX).

max_per_owner() -> application:get_env(beam_seccomp, max_prepared_per_owner, ?DEFAULT_MAX_PER_OWNER).

current(Slot, Gen, #{used := Used}) ->
    case Used of
        #{Slot := #{gen := Gen} = Entry} -> {ok, Entry};
        _ -> error
    end.

%% A purged slot, else a draining one purged now, else a new one below the
%% cap: slots (and their atoms) grow only with the number in use at once.
take_slot(#{used := Used, max := Max}) when map_size(Used) >= Max ->
    none;
take_slot(#{free := [Slot | Rest]} = S) ->
    {ok, Slot, S#{free := Rest}};
take_slot(#{draining := [_ | _]} = S) ->
    case purge_first(S) of
        {ok, _Slot, _S1} = Taken -> Taken;
        none -> new_slot(S)
    end;
take_slot(S) ->
    new_slot(S).

new_slot(#{next := Next, used := Used, draining := Draining, max := Max} = S) ->
    case map_size(Used) + length(Draining) < Max of
        true -> {ok, Next, S#{next := Next + 1}};
        false -> none
    end.

%% Stop the pool, delete the code and purge it when nothing runs it any more.
free_slot(Slot, #{used := Used, owners := Owners, held := Held} = S) ->
    #{mon := Mon, pool := Pool, owner := Owner} = maps:get(Slot, Used),
    demonitor(Mon, [flush]),
    seccomp_pool:stop(Pool),
    Mod = seccomp_slot_names:name(Slot),
    _ = code:delete(Mod),
    S1 = S#{used := maps:remove(Slot, Used), owners := maps:remove(Mon, Owners),
            held := case maps:get(Owner, Held) of
                        1 -> maps:remove(Owner, Held);
                        N -> Held#{Owner := N - 1}
                    end},
    schedule_drain(0, S1#{draining := maps:get(draining, S1) ++ [Slot]}).

%% Purge the oldest draining slot; a slot still in use goes to the back.
drain_one(#{draining := []} = S) ->
    S;
drain_one(#{draining := [Slot | Rest], free := Free} = S) ->
    case code:soft_purge(seccomp_slot_names:name(Slot)) of
        true when Rest =:= [] -> S#{draining := [], free := [Slot | Free]};
        true -> schedule_drain(0, S#{draining := Rest, free := [Slot | Free]});
        false -> schedule_drain(?RETRY_MS, S#{draining := Rest ++ [Slot]})
    end.

%% The first draining slot that purges (each purge checks every process, so
%% no more than needed are tried).
purge_first(#{draining := Draining} = S) ->
    case lists:splitwith(fun(Slot) -> not code:soft_purge(seccomp_slot_names:name(Slot)) end, Draining) of
        {Busy, [Slot | Rest]} -> {ok, Slot, S#{draining := Busy ++ Rest}};
        {_, []} -> none
    end.

schedule_drain(_Ms, #{draining_soon := true} = S) ->
    S;
schedule_drain(Ms, S) ->
    _ = erlang:send_after(Ms, self(), drain),
    S#{draining_soon := true}.
