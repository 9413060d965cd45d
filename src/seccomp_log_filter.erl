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
%%
%% Primary filters run newest first, and any of them may interpret the
%% event (Elixir's translator, from 1.15, is one): the filter must be the
%% first. {@link install/0} puts it there, and `seccomp_log_keeper' and every
%% sandbox start put it back when a host adds a filter later or drops it.
-module(seccomp_log_filter).

-export([install/0, uninstall/0, is_first/0, filter/2]).

%% Characters of a plain string a sandboxed process may log.
-define(MAX_TEXT, 1024).

%% The filter's two ids: moving it to the front adds it under the id not in
%% use (an added filter runs first) before the other copy goes, so it is
%% never absent and no other filter is rewritten on the way.
-define(IDS, [seccomp_log_filter, seccomp_log_filter_moved]).

%% @doc Make the filter the first primary filter (adding it if missing).
-spec install() -> ok.
install() ->
    case primary_filters() of
        [{Id, _} | Rest] ->
            case lists:member(Id, ?IDS) of
                true -> remove([I || {I, _} <- Rest, lists:member(I, ?IDS)]);
                false -> move_first([I || {I, _} <- Rest, lists:member(I, ?IDS)])
            end;
        [] ->
            move_first([])
    end.

move_first([Stale, Other]) ->
    remove([Stale]),
    move_first([Other]);
move_first(Present) ->
    [Spare | _] = ?IDS -- Present,
    case logger:add_primary_filter(Spare, {fun ?MODULE:filter/2, []}) of
        ok -> remove(Present);
        %% Another process added it meanwhile: the next check settles it.
        {error, {already_exist, _}} -> ok
    end.

remove(Ids) ->
    _ = [logger:remove_primary_filter(Id) || Id <- Ids],
    ok.

%% @doc Whether the filter runs before every other primary filter.
-spec is_first() -> boolean().
is_first() ->
    case primary_filters() of
        [{Id, _} | _] -> lists:member(Id, ?IDS);
        [] -> false
    end.

primary_filters() -> maps:get(filters, logger:get_primary_config(), []).

%% @doc Remove the filter (when the application stops).
-spec uninstall() -> ok.
uninstall() -> remove(?IDS).

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

inert(#{msg := {string, Text}, meta := Meta} = Event) when is_binary(Text), byte_size(Text) =< ?MAX_TEXT ->
    Event#{meta := inert_meta(Meta)};
inert(#{meta := Meta} = Event) ->
    Inert = inert_meta(Meta),
    Event#{msg := {"sandboxed process ~p: log event withheld (sandbox data)", [maps:get(pid, Inert, undefined)]},
           meta := Inert}.

%% Metadata the sandbox may have set (its own, or through the logging call)
%% is formatted by handlers too: only the logger's own time stamp and the
%% process's pid and group leader stay.
inert_meta(Meta) ->
    maps:filter(fun(time, V) -> is_integer(V);
                   (pid, V) -> is_pid(V);
                   (gl, V) -> is_pid(V);
                   (_, _) -> false
                end, Meta).
