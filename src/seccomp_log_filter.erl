%% @doc A primary `logger' filter: what sandboxed processes log (their crash
%% reports, the VM's "Error in process" for them, reports of the Tasks,
%% Agents and supervisors they start, and their own log calls) reaches the
%% host's handlers only as an inert line. Handlers and the Elixir
%% translator interpret reports (a stack frame's `error_info' names a
%% function they call, structs pick their `Inspect' code), and the data is
%% the sandbox's.
%%
%% A sandboxed process is one that joined a sandbox (the filter runs in the
%% logging process) or whose group leader is a sandbox's output capture
%% (the VM's own events name the dead process's group leader). A group
%% leader that is gone is treated the same: a capture ends with its sandbox.
-module(seccomp_log_filter).

-export([install/0, uninstall/0, filter/2]).

%% Characters of a plain string a sandboxed process may log.
-define(MAX_TEXT, 1024).

%% @doc Add the filter (once per VM).
-spec install() -> ok.
install() ->
    case logger:add_primary_filter(?MODULE, {fun ?MODULE:filter/2, []}) of
        ok -> ok;
        {error, {already_exist, _}} -> ok
    end.

%% @doc Remove the filter (when the application stops).
-spec uninstall() -> ok.
uninstall() ->
    _ = logger:remove_primary_filter(?MODULE),
    ok.

%% @private
-spec filter(logger:log_event(), term()) -> logger:filter_return().
filter(#{meta := Meta} = Event, _) ->
    %% A crashing filter is removed by logger: fail closed instead.
    try from_sandbox(Meta) of
        false -> ignore;
        true -> inert(Event)
    catch
        _:_ -> stop
    end.

from_sandbox(Meta) ->
    seccomp_sandbox_members:joined() orelse capture_or_gone(maps:get(gl, Meta, undefined)).

capture_or_gone(GL) when is_pid(GL), node(GL) =:= node() ->
    case erlang:process_info(GL, initial_call) of
        undefined -> true;
        {initial_call, Call} -> seccomp_capture:is_initial_call(Call)
    end;
capture_or_gone(_) ->
    false.

inert(#{msg := {string, Text}} = Event) when is_binary(Text), byte_size(Text) =< ?MAX_TEXT ->
    Event;
inert(#{meta := Meta} = Event) ->
    Event#{msg := {"sandboxed process ~p: log event withheld (sandbox data)", [maps:get(pid, Meta, undefined)]},
           meta := maps:without([report_cb, error_logger], Meta)}.
