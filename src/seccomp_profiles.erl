%% @doc Built-in sandbox profiles, and the calls the sandbox handler treats
%% specially.
%%
%% `pure' is the analogue of seccomp strict mode: data functions only, no
%% processes, no I/O, no process dictionary, ETS, code, ports or system
%% access. `processes' adds spawning, messages and exit signals among the
%% sandbox's own processes.
-module(seccomp_profiles).

-export([profile/1, names/0, kind/3, spawns/1, is_comparison/1, applies_no_data/1, bignum_class/3,
         compares_terms/2, data_function/3]).

-export_type([name/0, kind/0, bignum_class/0]).

-type name() :: pure | processes.
-type kind() :: plain | atom | dispatch | spawner | routed | refused | output
              | spawn_fun | spawn_mfa | agent_mfa | decode
              | {send, pos_integer()} | {signal, pos_integer()} | info
              | {amplifier, pos_integer(), pos_integer() | none}
              | {bignum, bignum_class()} | compare | {iodata, pos_integer()}.
-type bignum_class() :: '*' | 'bsl' | pow | operand | text | bytes | product.

-spec names() -> [name()].
names() -> [pure, processes].

%% @doc The policy map of a profile.
-spec profile(name()) -> {ok, map()} | {error, {unknown_profile, term()}}.
profile(pure) ->
    {ok, #{mode => whitelist, no_spawn => true, rules => pure_rules()}};
profile(processes) ->
    {ok, #{mode => whitelist, rules => pure_rules() ++ process_rules()}};
profile(Other) ->
    {error, {unknown_profile, Other}}.

%% @doc Whether a policy map lets code start processes (then fun bodies get
%% join markers, see {@link seccomp_rewrite}).
-spec spawns(seccomp_policy:spec()) -> boolean().
spawns(#{no_spawn := true}) -> false;
spawns(#{mode := blacklist}) -> true;
spawns(#{rules := Rules}) ->
    lists:any(fun(R) -> spawning_rule(R) end, Rules).

spawning_rule(#{match := P, action := Action}) -> Action =/= error andalso Action =/= kill
                                                      andalso spawning_rule(P);
spawning_rule({M, F, _}) ->
    lists:member(M, ['Elixir.Task', 'Elixir.Agent', proc_lib])
        orelse (lists:member(M, [erlang, 'Elixir.Kernel', 'Elixir.Process'])
                andalso (F =:= '_' orelse lists:prefix("spawn", atom_to_list(F)))).

%%% The pure profile ----------------------------------------------------------

-define(DATA_MODULES,
        ['Elixir.Enum', 'Elixir.Stream', 'Elixir.List', 'Elixir.Map', 'Elixir.MapSet',
         'Elixir.Keyword', 'Elixir.Integer', 'Elixir.Float', 'Elixir.Tuple', 'Elixir.Range',
         'Elixir.Regex', 'Elixir.Access', 'Elixir.String', 'Elixir.Base', 'Elixir.Bitwise',
         'Elixir.Date', 'Elixir.Time', 'Elixir.NaiveDateTime', 'Elixir.DateTime',
         'Elixir.Calendar.ISO', 'Elixir.Version', 'Elixir.URI', 'Elixir.Function',
         'Elixir.Kernel', 'Elixir.String.Chars', 'Elixir.List.Chars', 'Elixir.Inspect',
         'Elixir.Inspect.Algebra', 'Elixir.Inspect.Opts', 'Elixir.Collectable',
         'Elixir.Enumerable', 'Elixir.Exception', 'Elixir.Stream.Reducers',
         lists, maps, math, string, binary, unicode, sets, ordsets, gb_sets, gb_trees, queue,
         dict, orddict, proplists, base64, array, re, calendar, io_lib]).

-define(EXCEPTIONS,
        ['Elixir.ArgumentError', 'Elixir.ArithmeticError', 'Elixir.RuntimeError',
         'Elixir.KeyError', 'Elixir.MatchError', 'Elixir.CaseClauseError',
         'Elixir.CondClauseError', 'Elixir.FunctionClauseError', 'Elixir.WithClauseError',
         'Elixir.TryClauseError', 'Elixir.BadArityError', 'Elixir.BadFunctionError',
         'Elixir.BadMapError', 'Elixir.BadBooleanError', 'Elixir.BadStructError',
         'Elixir.Enum.EmptyError', 'Elixir.Enum.OutOfBoundsError', 'Elixir.SystemLimitError',
         'Elixir.Protocol.UndefinedError', 'Elixir.ErlangError',
         'Elixir.UnicodeConversionError', 'Elixir.UndefinedFunctionError', 'Elixir.Regex.CompileError']).

%% Functions of otherwise allowed modules that reach outside pure data.
-define(CARVED_OUT,
        [{'Elixir.Kernel', spawn, '_'}, {'Elixir.Kernel', spawn_link, '_'},
         {'Elixir.Kernel', spawn_monitor, '_'}, {'Elixir.Kernel', send, '_'},
         {'Elixir.Kernel', struct, '_'}, {'Elixir.Kernel', 'struct!', '_'},
         {'Elixir.Kernel', 'macro_exported?', '_'},
         {'Elixir.String', to_existing_atom, '_'}, {'Elixir.List', to_existing_atom, '_'},
         {'Elixir.URI', default_port, 2}, {'Elixir.Exception', blame, '_'},
         {'Elixir.Exception', blame_mfa, '_'}, {string, to_atom, '_'}]).

-define(ERLANG_BIFS,
        ['+', '-', '*', '/', 'div', 'rem', 'band', 'bor', 'bxor', 'bsl', 'bsr', 'bnot', 'not',
         'and', 'or', 'xor', '==', '/=', '=<', '<', '>=', '>', '=:=', '=/=', '++', '--',
         is_atom, is_binary, is_bitstring, is_boolean, is_float, is_function, is_integer,
         is_list, is_map, is_map_key, is_number, is_pid, is_port, is_record, is_reference,
         is_tuple, abs, adler32, append_element, atom_to_binary, atom_to_list, binary_part,
         binary_to_float, binary_to_integer, binary_to_list, bit_size, bitstring_to_list,
         byte_size, ceil, crc32, delete_element, element, float, float_to_binary, float_to_list,
         floor, hd, insert_element, integer_to_binary, integer_to_list, iolist_size,
         iolist_to_binary, length, list_to_binary, list_to_bitstring, list_to_float,
         list_to_integer, list_to_tuple, make_tuple, map_get, map_size, max, min, phash2,
         round, setelement, size, split_binary, tl, trunc, tuple_size, tuple_to_list, make_ref,
         self, node, error, throw, exit, raise, binary_to_atom, list_to_atom,
         binary_to_existing_atom, list_to_existing_atom, apply, make_fun, unique_integer,
         monotonic_time, system_time, convert_time_unit, date, time, localtime, universaltime,
         term_to_binary, external_size, fun_to_list, pid_to_list, ref_to_list, get_stacktrace,
         nif_error]).

pure_rules() ->
    ?DATA_MODULES ++ ?EXCEPTIONS
        ++ [#{match => P, action => error} || P <- ?CARVED_OUT]
        ++ [{erlang, F, '_'} || F <- ?ERLANG_BIFS]
        %% exit/2 is a signal to another process: only in `processes'
        ++ [#{match => {erlang, exit, 2}, action => error}]
        ++ [{'Elixir.Calendar', strftime, '_'}, {'Elixir.Process', sleep, 1}, {timer, sleep, 1}]
        %% Printing reaches only the sandbox's own output capture.
        ++ seccomp_output:rules().

%% @doc Whether `pure' allows `M:F/A' as a data function (no processes,
%% I/O, code or system access), but for `apply' and `make_fun', which call
%% what their arguments name.
-spec data_function(module(), atom(), arity()) -> boolean().
data_function(erlang, F, A) ->
    lists:member(F, ?ERLANG_BIFS) andalso not lists:member({F, A}, [{exit, 2}, {apply, 2}, {apply, 3}, {make_fun, 3}]);
data_function('Elixir.Kernel', apply, _A) ->
    false;
data_function(M, F, A) ->
    lists:member(M, ?DATA_MODULES ++ ?EXCEPTIONS)
        andalso not lists:any(fun({CM, CF, CA}) -> CM =:= M andalso CF =:= F andalso (CA =:= '_' orelse CA =:= A) end,
                              ?CARVED_OUT).

%% Local spawns only (no node argument, no spawn options: `min_heap_size' or
%% `max_heap_size' there would sidestep the limits), no registered names.
process_rules() ->
    Spawns = [{F, A} || F <- [spawn, spawn_link, spawn_monitor], A <- [1, 3]],
    [{M, F, A} || M <- [erlang, 'Elixir.Kernel'], {F, A} <- Spawns]
        ++ [{erlang, F, '_'} || F <- ['!', send, link, unlink, monitor, demonitor]]
        ++ [#{match => {erlang, exit, 2}, action => allow}, {'Elixir.Kernel', send, 2}]
        ++ [{'Elixir.Process', F, '_'}
            || F <- [send, exit, link, unlink, monitor, demonitor, 'alive?']]
        ++ [{'Elixir.Task', F, '_'} || F <- [await, await_many, yield, yield_many, shutdown]]
        ++ [{'Elixir.Task', F, A} || F <- [async, start], A <- [1, 3]]
        %% `%Task{}' values are handed back to `await' and friends.
        ++ [{'Elixir.Task', '__struct__', '_'}]
        ++ [{'Elixir.Agent', F, '_'} || F <- [get, update, get_and_update, cast, stop]]
        ++ [{'Elixir.Agent', F, 1} || F <- [start, start_link]].

%%% Calls the handler treats specially ----------------------------------------

%% @doc How the sandbox handler carries out an allowed call.
-spec kind(module(), atom(), arity()) -> kind().
kind(M, F, A) -> atom_maker(base_kind(M, F, A), M, F, A).

base_kind(M, Op, 2) when M =:= erlang; M =:= 'Elixir.Kernel' ->
    case is_comparison(Op) of
        true -> compare;
        false -> data_kind(M, Op, 2)
    end;
base_kind(M, F, A) when M =:= erlang; M =:= unicode; M =:= binary ->
    case lists:member({M, F, A}, seccomp_flatteners:iodata_sinks()) of
        true -> {iodata, 1};
        false -> data_kind(M, F, A)
    end;
base_kind(M, F, A) -> data_kind(M, F, A).

%% Functions that can create atoms (derived, see `seccomp_reach') are
%% refused, but for those the handler counts itself (`atom', `decode', and
%% a scanner's, whose text it bounds). Until the set is known the handler
%% counts the atoms every call makes.
atom_maker(Kind, M, F, A) when Kind =:= plain; Kind =:= dispatch ->
    case seccomp_reach:status(atoms, M, F, A) of
        true -> case seccomp_reach:scans_atoms(M) of
                    true -> Kind;
                    false -> refused
                end;
        _ -> Kind
    end;
atom_maker(Kind, _M, _F, _A) ->
    Kind.

%% @doc Whether `erlang:Op/2' compares whole terms (in one uninterruptible
%% call: the handler bounds its operands).
-spec is_comparison(atom()) -> boolean().
is_comparison(Op) -> lists:member(Op, ['==', '/=', '=:=', '=/=', '<', '>', '=<', '>=', max, min]).

data_kind(M, F, A) when M =:= erlang; M =:= binary; M =:= 'Elixir.Integer'; M =:= 'Elixir.Kernel';
                        M =:= 'Elixir.String'; M =:= 'Elixir.List'; M =:= 'Elixir.Enum' ->
    case bignum_class(M, F, A) of
        none -> call_kind(M, F, A);
        Class -> {bignum, Class}
    end;
data_kind(M, F, A) -> call_kind(M, F, A).

%% @doc How an integer operation's cost grows with its operands (see
%% `seccomp_cost:integer_op/2'), or `none'.
-spec bignum_class(module(), atom(), arity()) -> bignum_class() | none.
bignum_class(erlang, Op, 2) when Op =:= '*'; Op =:= 'bsl' -> Op;
bignum_class(M, F, 2) when (M =:= 'Elixir.Integer' andalso F =:= pow);
                           (M =:= 'Elixir.Kernel' andalso F =:= '**') -> pow;
bignum_class(M, F, 2) when (M =:= erlang orelse M =:= 'Elixir.Kernel'), (F =:= 'div' orelse F =:= 'rem');
                           M =:= 'Elixir.Integer', (F =:= floor_div orelse F =:= mod orelse F =:= gcd) ->
    operand;
bignum_class(M, F, A) when A =:= 1; A =:= 2 ->
    case {M, F} of
        {erlang, integer_to_binary} -> operand;
        {erlang, integer_to_list} -> operand;
        {'Elixir.Integer', to_string} -> operand;
        {'Elixir.Integer', to_charlist} -> operand;
        {'Elixir.Integer', digits} -> operand;
        {erlang, binary_to_integer} -> text;
        {erlang, list_to_integer} -> text;
        {'Elixir.String', to_integer} -> text;
        {'Elixir.List', to_integer} -> text;
        {'Elixir.Integer', parse} -> text;
        {binary, decode_unsigned} -> bytes;
        %% Compiled code multiplies the elements: a product of their sizes.
        {'Elixir.Enum', product} when A =:= 1 -> product;
        _ -> none
    end;
bignum_class(_M, _F, _A) -> none.

call_kind(erlang, binary_to_atom, A) when A =:= 1; A =:= 2 -> atom;
call_kind(erlang, list_to_atom, 1) -> atom;
call_kind('Elixir.String', to_atom, 1) -> atom;
call_kind('Elixir.List', to_atom, 1) -> atom;
call_kind(M, _F, _A) when M =:= rpc; M =:= erpc; M =:= 'Elixir.Node' -> routed;
call_kind(supervisor, start_child, 2) -> routed;
call_kind('Elixir.Supervisor', start_child, 2) -> routed;
call_kind('Elixir.DynamicSupervisor', start_child, 2) -> routed;
call_kind('Elixir.Task.Supervisor', F, 2) when F =:= start_child; F =:= async; F =:= async_nolink -> routed;
call_kind(M, F, A) when M =:= io; M =:= 'Elixir.IO' ->
    %% Every other function of theirs names a device or reads: refused,
    %% whatever the policy, but for the data conversions of `IO'.
    case seccomp_output:is_printer(M, F, A) of
        true -> output;
        false when M =:= 'Elixir.IO', (F =:= iodata_to_binary orelse F =:= iodata_length
                                       orelse F =:= chardata_to_string), A =:= 1 -> dispatch;
        false -> refused
    end;
call_kind(erlang, F, A) ->
    %% The VM's own console output (`erlang:display/1' and its kin) bypasses
    %% every group leader: refused whatever the policy.
    case seccomp_introspection:console(F) of
        true -> refused;
        false -> process_kind(erlang, F, A)
    end;
call_kind(M, F, A) when M =:= 'Elixir.Kernel'; M =:= 'Elixir.Process'; M =:= proc_lib ->
    process_kind(M, F, A);
call_kind('Elixir.Task', F, A) -> task_kind(F, A);
call_kind('Elixir.Agent', F, A) -> agent_kind(F, A);
%% Off-heap arrays of one word per element.
call_kind(M, new, 2) when M =:= atomics; M =:= counters -> {amplifier, 1, none};
call_kind(binary, copy, 2) -> {amplifier, 2, 1};
call_kind('Elixir.String', duplicate, 2) -> {amplifier, 2, 1};
call_kind('Elixir.String', F, A) when (F =:= pad_leading orelse F =:= pad_trailing), A >= 2 ->
    {amplifier, 2, none};
call_kind(lists, duplicate, 2) -> {amplifier, 1, none};
call_kind('Elixir.List', duplicate, 2) -> {amplifier, 2, none};
call_kind('Elixir.Tuple', duplicate, 2) -> {amplifier, 2, none};
call_kind(M, _F, _A) ->
    case applies_no_data(M) of
        true -> plain;
        false ->
            %% Logging would come from the caller's process in caller mode.
            case seccomp_log_modules:is_member(M) of
                true -> refused;
                false -> dispatch
            end
    end.

%% @doc Whether `M:F' compares or hashes whole terms it is given (keys,
%% members, elements to sort) in steps the VM cannot interrupt: the
%% collection modules and the BIFs that look a key up. Maps (and the sets
%% and trees of the tuple-based modules) passed to them are containers
%% whose elements were bounded as they were added; every other argument is
%% bounded by the handler.
-spec compares_terms(module(), atom()) -> boolean().
compares_terms(erlang, F) -> lists:member(F, [is_map_key, map_get, '--', '++', phash2, phash]);
compares_terms(M, _F) ->
    lists:member(M, [lists, maps, sets, ordsets, orddict, gb_sets, gb_trees, dict, proplists, queue]).

%% @doc Whether no function of `M' can run code that its arguments name:
%% a module (as a callback, a struct, a struct's field), an `{M, F, A}', a
%% process to message. Every other module's calls get their arguments
%% checked (see `seccomp_sandbox:dispatch/4'), so a module missing here is
%% slower, never unsafe. The test suite derives from the installed OTP and
%% Elixir (xref) the functions that can apply data and checks that none of
%% them is in these modules.
-spec applies_no_data(module()) -> boolean().
applies_no_data(M) ->
    lists:member(M, [lists, maps, binary, unicode, calendar, re, sets, gb_sets, gb_trees,
                     queue, proplists, array, math, base64, dict, orddict, ordsets,
                     'Elixir.Tuple', 'Elixir.Bitwise', 'Elixir.Function']).

process_kind(_M, F, 1) when F =:= spawn; F =:= spawn_link; F =:= spawn_monitor -> spawn_fun;
process_kind(erlang, spawn_opt, 2) -> spawn_fun;
process_kind('Elixir.Process', spawn, 2) -> spawn_fun;
process_kind(proc_lib, spawn_opt, 2) -> spawn_fun;
process_kind(_M, F, 3) when F =:= spawn; F =:= spawn_link; F =:= spawn_monitor -> spawn_mfa;
process_kind(erlang, spawn_opt, 4) -> spawn_mfa;
process_kind(proc_lib, spawn_opt, 4) -> spawn_mfa;
process_kind('Elixir.Process', spawn, 4) -> spawn_mfa;
%% What a process holds (its mailbox, dictionary, links, monitors, stack)
%% may be another run's or the library's.
process_kind(erlang, process_info, A) when A =:= 1; A =:= 2 -> info;
process_kind('Elixir.Process', info, A) when A =:= 1; A =:= 2 -> info;
process_kind(erlang, '!', 2) -> {send, 1};
process_kind(_M, send, A) when A =:= 2; A =:= 3 -> {send, 1};
process_kind(_M, exit, 2) -> {signal, 1};
process_kind(_M, F, 1) when F =:= link; F =:= unlink -> {signal, 1};
process_kind('Elixir.Process', monitor, 1) -> {signal, 1};
process_kind(erlang, monitor, A) when A =:= 2; A =:= 3 -> {signal, 2};
process_kind(erlang, make_tuple, _A) -> {amplifier, 1, none};
%% Ports run programs and drivers outside the VM's reach: never mediated.
process_kind(erlang, open_port, _A) -> refused;
process_kind(erlang, F, A) when F =:= binary_to_term, A =:= 1; F =:= binary_to_term, A =:= 2 -> decode;
process_kind(erlang, F, _A) when F =:= spawn; F =:= spawn_link; F =:= spawn_monitor; F =:= spawn_opt;
                                F =:= spawn_request ->
    %% The forms above are mediated; the others name a node or options.
    refused;
process_kind(erlang, F, _A) ->
    %% The data BIFs of the profiles; any other BIF may address a process
    %% or start one (spawn_request, send_after, suspend_process...).
    case lists:member(F, ?ERLANG_BIFS) of
        true -> plain;
        false -> dispatch
    end;
process_kind(_M, _F, _A) -> dispatch.

task_kind(F, 1) when F =:= async; F =:= start -> spawn_fun;
task_kind(F, 3) when F =:= async; F =:= start -> spawn_mfa;
task_kind(_F, _A) -> spawner.

agent_kind(F, 1) when F =:= start; F =:= start_link -> spawn_fun;
agent_kind(F, 3) when F =:= start; F =:= start_link -> spawn_mfa;
%% `get(Agent, M, F, A)' and friends: the agent would apply `M:F' itself.
agent_kind(F, A) when (F =:= get orelse F =:= update orelse F =:= get_and_update), A =:= 4 orelse A =:= 5;
                      F =:= cast, A =:= 4 -> agent_mfa;
agent_kind(_F, _A) -> {signal, 1}.
