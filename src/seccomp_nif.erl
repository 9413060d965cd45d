%% @doc The native policy table. Internal: use {@link seccomp}.
%%
%% The library is loaded from `-on_load'. When it is missing or fails to load
%% the module still loads, and every function raises
%% `{seccomp_nif_not_loaded, Reason, Hint}', so callers fail closed with an
%% error that says what to do instead of `undef'.
-module(seccomp_nif).

-export([noop/0, compile/2, restrict_self/1, restrict/2, check/3, check_pid/4, check_with/4,
         spawn_ticket/0, adopt/1, adopt_pid/2, policy_ticket/1, status/1, policy_spec/1, table_size/0,
         spec_to_json/1, spec_from_json/1, load_error/0,
         enabled/3, trace/5, watch_pending/0, is_restricted/1, check_guard/3, arm/1, disarm/0,
         flat_size/4, flat_size_dirty/4, etf_scan/2, etf_scan_dirty/2,
         dist_conn_new/1, dist_conn_peer/2, dist_caps_show/2, dist_caps_named/2, dist_caps_rotate/1, dist_caps_owner/2,
         dist_caps_found_plain/2, dist_caps_is_plain/2, dist_caps_holds/2,
         dist_caps_monitor_fired/3, dist_caps_forget_monitor/2, dist_policy_changed/0, dist_conn_stale/1, dist_conn_rules/3,
         dist_conn_registry/2]).

-export([load_driver/0]).

-on_load(load/0).

-define(HINT, "build the native library with `mix compile`, `rebar3 compile` or `make build`; "
              "it must end up in priv/native/libseccomp_nif.so").

load() ->
    Path = filename:join([priv_dir(), "native", "libseccomp_nif"]),
    case erlang:load_nif(Path, seccomp_guard:native_spec()) of
        ok ->
            ok;
        {error, Reason} ->
            persistent_term:put({?MODULE, load_error}, {Path, Reason}),
            logger:error("beam_seccomp: cannot load ~ts: ~p; ~s", [Path, Reason, ?HINT]),
            ok
    end.

%% @doc Load the distribution carrier's port driver (the same library) for
%% the calling process, which should live as long as distribution does.
-spec load_driver() -> ok | {error, term()}.
load_driver() ->
    case erl_ddll:load(filename:join(priv_dir(), "native"), "libseccomp_nif") of
        ok -> ok;
        {error, Why} -> {error, {erl_ddll:format_error(Why), Why}}
    end.

priv_dir() ->
    case code:priv_dir(beam_seccomp) of
        {error, bad_name} ->
            filename:join(filename:dirname(filename:dirname(code:which(?MODULE))), "priv");
        Dir ->
            Dir
    end.

%% @doc Why the native library is not loaded, or `none'.
-spec load_error() -> none | {file:filename(), term()}.
load_error() -> persistent_term:get({?MODULE, load_error}, none).

%% Each stub calls erlang:nif_error/1 itself, so that dialyzer trusts its spec.
-define(NOT_LOADED, erlang:nif_error({seccomp_nif_not_loaded, load_error(), ?HINT})).

-spec noop() -> ok.
noop() -> ?NOT_LOADED.

-spec compile(tuple(), binary()) -> {ok, reference()}.
compile(_Spec, _Source) -> ?NOT_LOADED.

-spec restrict_self(reference()) -> ok.
restrict_self(_Policy) -> ?NOT_LOADED.

-spec restrict(pid(), reference()) -> ok | {error, not_permitted | noproc}.
restrict(_Pid, _Policy) -> ?NOT_LOADED.

-spec check(atom(), atom(), non_neg_integer()) -> allow | {deny, term()}.
check(_M, _F, _A) -> ?NOT_LOADED.

-spec check_with(reference(), atom(), atom(), non_neg_integer()) -> allow | {deny, term()}.
check_with(_Policy, _M, _F, _A) -> ?NOT_LOADED.

-spec check_pid(pid(), atom(), atom(), non_neg_integer()) -> allow | {deny, term()}.
check_pid(_Pid, _M, _F, _A) -> ?NOT_LOADED.

-spec spawn_ticket() -> none | {allow | {deny, term()}, none | reference()}.
spawn_ticket() -> ?NOT_LOADED.

-spec adopt(reference()) -> ok.
adopt(_Ticket) -> ?NOT_LOADED.

-spec adopt_pid(pid(), reference()) -> ok | {error, not_permitted | noproc}.
adopt_pid(_Pid, _Ticket) -> ?NOT_LOADED.

-spec policy_ticket(reference()) -> reference().
policy_ticket(_Policy) -> ?NOT_LOADED.

-spec status(pid()) -> undefined | error | {[binary()], non_neg_integer(), non_neg_integer()}.
status(_Pid) -> ?NOT_LOADED.

-spec policy_spec(reference()) -> binary().
policy_spec(_Policy) -> ?NOT_LOADED.

-spec table_size() -> non_neg_integer().
table_size() -> ?NOT_LOADED.

%% @doc erl_tracer callback: which trace events to build (spawn only).
-spec enabled(atom(), term(), term()) -> trace | discard.
enabled(_Tag, _State, _Tracee) -> ?NOT_LOADED.

%% @doc erl_tracer callback: a traced restricted process spawned a child,
%% which gets the parent's inheritable layers before the spawn returns.
-spec trace(atom(), term(), term(), term(), term()) -> ok.
trace(_Tag, _State, _Tracee, _Child, _Opts) -> ?NOT_LOADED.

%% @doc Monitor the processes whose entries tracer callbacks created
%% (forgetting those already gone).
-spec watch_pending() -> ok.
watch_pending() -> ?NOT_LOADED.

-spec is_restricted(pid()) -> boolean().
is_restricted(_Pid) -> ?NOT_LOADED.

%% @doc The guard's verdict alone, for a restricted caller (`allow' for others).
-spec check_guard(atom(), atom(), non_neg_integer()) -> allow | {deny, term()}.
check_guard(_M, _F, _A) -> ?NOT_LOADED.

%% @doc Until {@link disarm/0}, every process the (traced) caller spawns
%% adopts the ticket's layers before it runs: a supervisor starting a
%% restricted child.
-spec arm(reference()) -> ok.
arm(_Ticket) -> ?NOT_LOADED.

-spec disarm() -> ok.
disarm() -> ?NOT_LOADED.

-spec spec_to_json(tuple()) -> {ok, binary()} | {error, term()}.
spec_to_json(_Spec) -> ?NOT_LOADED.

-spec spec_from_json(binary()) -> {ok, tuple()} | {error, {invalid_json, binary()}}.
spec_from_json(_Json) -> ?NOT_LOADED.

%% @doc The flattened cost of a term, stopping past `Limit' (see `seccomp_size').
-spec flat_size(term(), non_neg_integer(), [{term(), non_neg_integer()}], term | iodata) ->
          {ok, non_neg_integer()} | over | dirty | {opaque, [term()]}.
flat_size(_Term, _Limit, _Known, _Mode) -> ?NOT_LOADED.

%% @doc {@link flat_size/4} on a dirty scheduler, without a work budget.
-spec flat_size_dirty(term(), non_neg_integer(), [{term(), non_neg_integer()}], term | iodata) ->
          {ok, non_neg_integer()} | over | {opaque, [term()]}.
flat_size_dirty(_Term, _Limit, _Known, _Mode) -> ?NOT_LOADED.

%% The scan of one term of the external term format (see `seccomp_dist_etf').
-type etf_scan() :: {ok, Size :: non_neg_integer(), New :: [binary()], Unchecked :: [binary()],
                     Funs :: non_neg_integer(), Memory :: non_neg_integer()}
                  | {error, term()}.

-spec etf_scan(binary(), non_neg_integer()) -> etf_scan() | dirty.
etf_scan(_Bin, _MaxNewAtoms) -> ?NOT_LOADED.

-spec etf_scan_dirty(binary(), non_neg_integer()) -> etf_scan().
etf_scan_dirty(_Bin, _MaxNewAtoms) -> ?NOT_LOADED.

%% A distribution connection's native state (see `seccomp_dist_caps'):
%% `{Conn, Id}', where `Id' is what its driver port claims it by.
-spec dist_conn_new(binary()) -> {reference(), pos_integer()}.
dist_conn_new(_NodeName) -> ?NOT_LOADED.

-spec dist_conn_peer(reference(), binary()) -> boolean().
dist_conn_peer(_Conn, _PeerName) -> ?NOT_LOADED.

-spec dist_caps_show(reference(), binary()) -> ok.
dist_caps_show(_Conn, _Packet) -> ?NOT_LOADED.

-spec dist_caps_named(reference(), binary()) -> boolean().
dist_caps_named(_Conn, _Packet) -> ?NOT_LOADED.

-spec dist_caps_owner(reference(), reference()) -> pid() | undefined.
dist_caps_owner(_Conn, _Ref) -> ?NOT_LOADED.

-spec dist_caps_found_plain(reference(), pid()) -> ok.
dist_caps_found_plain(_Conn, _Pid) -> ?NOT_LOADED.

-spec dist_caps_is_plain(reference(), pid()) -> boolean().
dist_caps_is_plain(_Conn, _Pid) -> ?NOT_LOADED.

-spec dist_caps_rotate(reference()) -> ok.
dist_caps_rotate(_Conn) -> ?NOT_LOADED.

-spec dist_caps_holds(reference(), pid() | reference()) -> boolean().
dist_caps_holds(_Conn, _Item) -> ?NOT_LOADED.

-spec dist_caps_monitor_fired(reference(), reference(), term()) -> boolean().
dist_caps_monitor_fired(_Conn, _Ref, _Proc) -> ?NOT_LOADED.

-spec dist_caps_forget_monitor(reference(), reference()) -> ok.
dist_caps_forget_monitor(_Conn, _Ref) -> ?NOT_LOADED.

-spec dist_policy_changed() -> non_neg_integer().
dist_policy_changed() -> ?NOT_LOADED.

-spec dist_conn_stale(reference()) ->
          {non_neg_integer(), boolean(), boolean(), non_neg_integer(), non_neg_integer()}.
dist_conn_stale(_Conn) -> ?NOT_LOADED.

-spec dist_conn_rules(reference(), non_neg_integer(), {boolean(), non_neg_integer(), [term()], [binary()]}) -> ok.
dist_conn_rules(_Conn, _Epoch, _Rules) -> ?NOT_LOADED.

-spec dist_conn_registry(reference(), [pid()]) -> ok.
dist_conn_registry(_Conn, _NamedPids) -> ?NOT_LOADED.
