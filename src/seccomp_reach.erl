%% @doc Sets of exported functions of the installed Elixir, stdlib and
%% kernel that can reach one of a group of built-ins, directly or through
%% other functions (derived from the shared call graph, `seccomp_callgraph').
%%
%% <ul>
%% <li>`atoms': functions that can create atoms from data (refused, but
%%     for those whose atoms the handler counts itself);</li>
%% <li>`superlinear': functions whose output or working memory can grow
%%     with a product of their arguments' sizes (replacement, splitting and
%%     matching with compiled patterns, regular expressions); their
%%     arguments are bounded by `seccomp_cost'.</li>
%% <li>`integer_text': functions that can turn text into an integer, in
%%     time quadratic in the number of digits and without yielding; their
%%     text arguments are bounded by `seccomp_cost'.</li>
%% <li>`host_state': functions that can reach state the whole VM shares
%%     (writes of `persistent_term', the applications and their environment,
%%     logger's configuration, process groups, the VM's console); refused in
%%     every sandbox, whatever the policy.</li>
%% <li>`forge': functions that make a pid, port or reference of text
%%     (`list_to_ref/1'...): such an identifier names what the sandbox did
%%     not make (a host process, timer, alias); refused in every sandbox,
%%     whatever the policy.</li>
%% <li>`inflate': functions that decompress (`zlib''s inflation, and what
%%     reaches it): their output has no bound their input sets (8 MB of
%%     deflate stream make 8 GB), so no bound can be checked before the
%%     call; refused in every sandbox, whatever the policy.</li>
%% </ul>
%%
%% Until the sets are known every function counts as a member (refused or
%% bounded: slower or stricter, never unsafe).
-module(seccomp_reach).

-export([member/4, status/4, specs/0, ensure/0, derive/0, sinks/1, groups/0, refused_groups/0,
         scans_atoms/1]).

-export_type([group/0]).

-type group() :: atoms | superlinear | integer_text | host_state | inflate | forge.

-define(APPS, [elixir, stdlib, kernel]).
%% Protocol dispatch reaches every implementation; the implementations stay
%% in the graph, reached from wherever they are called by name.
-define(CUT, ['Elixir.Enumerable', 'Elixir.Collectable', 'Elixir.Inspect',
              'Elixir.String.Chars', 'Elixir.List.Chars']).

-spec groups() -> [group()].
groups() -> [atoms, superlinear, integer_text, host_state, inflate, forge].

%% @doc The groups whose members are refused in every sandbox.
-spec refused_groups() -> [group()].
refused_groups() -> [host_state, inflate, forge].

%% @doc The built-ins of a group.
-spec sinks(group()) -> [mfa()].
sinks(atoms) ->
    [{erlang, list_to_atom, 1}, {erlang, binary_to_atom, 1}, {erlang, binary_to_atom, 2},
     {erlang, binary_to_term, 1}, {erlang, binary_to_term, 2}];
sinks(integer_text) ->
    [{erlang, binary_to_integer, 1}, {erlang, binary_to_integer, 2},
     {erlang, list_to_integer, 1}, {erlang, list_to_integer, 2}];
sinks(host_state) ->
    [{persistent_term, put, 2}, {persistent_term, erase, 1}]
        ++ [{application_controller, F, A} || {F, A} <- requests(application_controller)]
        %% Their front ends too, so that library code reading its own
        %% configuration by literal names does not count.
        ++ [{M, F, A} || M <- [application, 'Elixir.Application'], {F, A} <- api(M)]
        ++ [{logger_server, F, A} || {F, A} <- requests(logger_server), configures_logger(F)]
        %% The VM's process groups, whose scope servers the default names.
        ++ [{M, F, A} || M <- [pg, global_group], {F, A} <- requests(M)]
        ++ [{erlang, F, A} || {F, A} <- erlang:module_info(exports),
                              string:find(atom_to_list(F), "display") =/= nomatch];
sinks(forge) ->
    [{erlang, list_to_pid, 1}, {erlang, list_to_port, 1}, {erlang, list_to_ref, 1}];
sinks(inflate) ->
    [{zlib, F, A} || {F, A} <- zlib:module_info(exports),
                     string:find(atom_to_list(F), "nflate") =/= nomatch
                         orelse lists:member(F, [uncompress, unzip, gunzip])];
sinks(superlinear) ->
    [{binary, F, A} || {F, A} <- [{compile_pattern, 1}, {match, 2}, {match, 3}, {matches, 2},
                                   {matches, 3}, {split, 2}, {split, 3}, {replace, 3},
                                   {replace, 4}]]
        ++ [{re, F, A} || {F, A} <- [{compile, 1}, {compile, 2}, {run, 2}, {run, 3},
                                      {replace, 3}, {replace, 4}, {split, 2}, {split, 3}]].

%% @doc Whether `M:F/A' is in (or reaches) `Group'; while the sets are not
%% known, or cannot be derived, every function is.
-spec member(group(), module(), atom(), arity()) -> boolean().
member(Group, M, F, A) -> status(Group, M, F, A) =/= false.

%% @doc Whether `M:F/A' is in `Group', or `unknown' while the sets are
%% being derived.
-spec status(group(), module(), atom(), arity()) -> boolean() | unknown.
status(Group, M, F, A) -> seccomp_callgraph:status(key(Group), {M, F, A}).

key(Group) -> {?MODULE, Group}.

%% @doc What the background derivation (`seccomp_callgraph:start_link/1')
%% derives for this module: one set per group.
-spec specs() -> [seccomp_callgraph:spec()].
specs() -> [spec(G) || G <- groups()].

%% A call with literal arguments only (`binary_to_atom(<<"Dict">>)') makes
%% no atom of data and does no work that grows with input.
spec(Group) ->
    #{key => key(Group), apps => ?APPS, cut => cut(Group), cut_into => cut_into(Group),
      sinks => sinks(Group), data_only => true}.

%% @doc Wait until the sets are known, deriving them here if no one else is.
-spec ensure() -> ok.
ensure() -> lists:foreach(fun seccomp_callgraph:ensure/1, specs()).

%% @doc Each group's built-ins and the exported functions that reach them.
-spec derive() -> {ok, #{group() => [mfa()]}} | error.
derive() ->
    case [seccomp_callgraph:derive(spec(G)) || G <- groups()] of
        [{ok, _} | _] = Sets -> {ok, maps:from_list(lists:zip(groups(), [L || {ok, L} <- Sets]))};
        _ -> error
    end.

%% @doc Whether `M' makes atoms of the text it is given, one per name
%% at most (`erl_scan'): its derived members are counted as they run, their
%% text bounded by what the run may still make, instead of refused.
-spec scans_atoms(module()) -> boolean().
scans_atoms(M) -> M =:= erl_scan.

%% Modules and functions whose calls are not followed. For atoms, also
%% the function that names an anonymous fun's parent (printing a
%% stacktrace or a fun): it makes at most one atom, a part of the atom it
%% is given; and `proc_lib', whose spawns the handler carries out itself
%% and whose crash reports name a function's arguments by their position.
cut(atoms) ->
    ?CUT ++ [proc_lib, {'Elixir.Code.Identifier', extract_anonymous_fun_parent, 1}];
cut(host_state) ->
    %% Spawning, logging and the generic servers change the VM's shared
    %% state only in other processes (the sandbox's spawns and messages are
    %% judged by themselves).
    ?CUT ++ [proc_lib, gen, gen_server, gen_statem, gen_event, supervisor, logger_backend,
             logger_proxy, erl_features, code, code_server, error_handler, error_logger,
             'Elixir.Code', 'Elixir.Module', 'Elixir.Exception', erl_error,
             %% Caches a level per logging module, once each: the modules
             %% that log are code the VM holds, not data.
             {logger_config, allow, 2}];
cut(inflate) ->
    %% Blaming an exception reads the debug information of installed code
    %% (its size is the code's, not data's).
    ?CUT ++ ['Elixir.Exception', 'Elixir.FunctionClauseError'];
cut(_Group) ->
    ?CUT.

%% The exports of a server's module but its behaviour callbacks (and its
%% report formatter): the requests others make of it.
requests(M) ->
    Callbacks = gen_server:behaviour_info(callbacks) ++ gen_server:behaviour_info(optional_callbacks),
    [FA || {F, _} = FA <- M:module_info(exports), not lists:member(FA, Callbacks),
           F =/= module_info, F =/= format_log].

%% The functions of a module (none if it is not installed), but for those
%% that describe it and its macros.
api(M) ->
    case code:ensure_loaded(M) of
        {module, M} ->
            [FA || {F, _} = FA <- M:module_info(exports),
                   not lists:member(F, [module_info, '__info__', behaviour_info]),
                   not lists:prefix("MACRO-", atom_to_list(F))];
        {error, _} ->
            []
    end.

%% Logger's configuration among the requests of its server (the others
%% start it or log).
configures_logger(F) ->
    lists:any(fun(P) -> lists:prefix(P, atom_to_list(F)) end,
              ["set_", "unset_", "update_", "add_", "remove_"]).

%% Modules whose functions are members when they reach a built-in, but
%% whose callers elsewhere are not members through them. For atoms: the
%% error paths (raising and formatting exceptions, the error handler, code
%% loading), which make atoms of module and function names the code
%% already holds, and `erl_scan', which printing calls only to see whether
%% an atom needs quotes. Called directly they are members: `erl_scan:string/1'
%% makes an atom of every word of its text.
cut_into(atoms) ->
    ['Elixir.Exception', 'Elixir.Kernel.Utils', 'Elixir.Inspect.Algebra', 'Elixir.Code',
     'Elixir.Macro', 'Elixir.Module', 'Elixir.Protocol', 'Elixir.IO', erl_error, error_handler,
     code, code_server, error_logger, logger, io, erl_scan];
cut_into(_Group) ->
    [].
