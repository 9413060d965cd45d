%% @doc Policies: validation, normalisation, compilation and files.
%%
%% A policy is an immutable value holding its normalised specification and a
%% compiled native resource that every restricted process shares.
-module(seccomp_policy).

-export([new/1, spec/1, native/1, from_spec_binary/1, is_policy/1,
         to_file/2, from_file/1, to_json/1, from_json/1]).

-export_type([t/0, spec/0, rule/0, pattern/0, action/0, why/0]).

-record(seccomp_policy, {spec :: spec(), native :: reference()}).

-opaque t() :: #seccomp_policy{}.
-type pattern() :: module() | {module(), atom(), arity() | '_'}.
-type action() :: allow | error | kill | log | {trap, pid() | atom()}.
-type rule() :: {module(), atom(), arity() | '_'} | #{match := pattern(), action := action()}.
-type spec() :: #{mode := whitelist | blacklist, rules := [rule()], no_spawn := boolean(),
                  inherit := boolean(), default_action := action()}.
-type why() :: term().

-define(KEYS, [mode, rules, no_spawn, inherit, default_action]).
-define(MAX_RULES, 1000000).

%% @doc Validate and compile a policy map (see {@link seccomp:policy/1}).
-spec new(term()) -> {ok, t()} | {error, {invalid_policy, why()}}.
new(#seccomp_policy{} = P) ->
    {ok, P};
new(#{'__struct__' := 'Elixir.Seccomp.Policy', native := P}) ->
    new(P);
new(Map) when is_map(Map) ->
    try normalise(Map) of
        Spec -> {ok, compile(Spec)}
    catch
        throw:{invalid, Why} -> {error, {invalid_policy, Why}}
    end;
new(Other) ->
    {error, {invalid_policy, {not_a_map, Other}}}.

%% @doc The normalised specification of a policy.
-spec spec(t()) -> spec().
spec(#seccomp_policy{spec = S}) -> S.

%% @doc The native resource, for {@link seccomp_nif}.
-spec native(t()) -> reference().
native(#seccomp_policy{native = N}) -> N.

-spec is_policy(term()) -> boolean().
is_policy(P) -> is_record(P, seccomp_policy).

%% @doc Rebuild a policy from the binary the native table keeps for each layer.
-spec from_spec_binary(binary()) -> spec().
from_spec_binary(Bin) -> binary_to_term(Bin).

compile(Spec) ->
    {ok, Native} = seccomp_nif:compile(to_native(Spec), term_to_binary(Spec)),
    #seccomp_policy{spec = Spec, native = Native}.

%%% Validation -------------------------------------------------------------

normalise(Map) ->
    case maps:keys(maps:without(?KEYS, Map)) of
        [] -> ok;
        [Unknown | _] -> throw({invalid, {unknown_key, Unknown}})
    end,
    Mode = one_of(mode, maps:get(mode, Map, whitelist), [whitelist, blacklist]),
    Default = default_action(maps:get(default_action, Map, error)),
    #{mode => Mode,
      rules => rules(maps:get(rules, Map, [])),
      no_spawn => boolean(no_spawn, maps:get(no_spawn, Map, false)),
      inherit => boolean(inherit, maps:get(inherit, Map, true)),
      default_action => Default}.

one_of(Key, Value, Allowed) ->
    case lists:member(Value, Allowed) of
        true -> Value;
        false -> throw({invalid, {Key, Value}})
    end.

boolean(Key, Value) -> one_of(Key, Value, [true, false]).

default_action(allow) -> throw({invalid, {default_action, allow}});
default_action(A) ->
    try action(A) catch throw:{invalid, _} -> throw({invalid, {default_action, A}}) end.

action(A) when A =:= allow; A =:= error; A =:= kill; A =:= log -> A;
action({trap, B} = A) when is_pid(B), node(B) =:= node() -> A;
action({trap, B} = A) when is_atom(B), B =/= undefined -> A;
action(A) -> throw({invalid, {action, A}}).

rules(Rules) -> rules(Rules, 0, []).

rules([], _N, Acc) ->
    lists:reverse(Acc);
rules([R | Rest], N, Acc) when N < ?MAX_RULES ->
    rules(Rest, N + 1, [rule(R) | Acc]);
rules([_ | _], _N, _Acc) ->
    throw({invalid, {too_many_rules, ?MAX_RULES}});
rules(Other, _N, _Acc) ->
    throw({invalid, {rules, not_a_list, Other}}).

rule(#{match := P, action := A} = R) when map_size(R) =:= 2 ->
    try #{match => pattern(P), action => action(A)}
    catch throw:{invalid, _} -> throw({invalid, {rule, R}})
    end;
rule(R) ->
    try pattern(R) catch throw:{invalid, _} -> throw({invalid, {rule, R}}) end.

pattern(M) when is_atom(M) -> pattern({M, '_', '_'});
pattern({M, F, A} = P)
  when is_atom(M), M =/= '_', is_atom(F),
       (A =:= '_' orelse (is_integer(A) andalso A >= 0 andalso A =< 255)) -> P;
pattern(P) -> throw({invalid, {pattern, P}}).

%% The wire form read by the NIF (see native/seccomp_nif/src/terms.rs).
to_native(#{mode := Mode, rules := Rules, no_spawn := S, inherit := I, default_action := D}) ->
    {Mode, S, I, D, [native_rule(R) || R <- Rules]}.

native_rule(#{match := {M, F, A}, action := Act}) -> {M, F, A, Act};
native_rule({M, F, A}) -> {M, F, A, default}.

from_native({Mode, S, I, D, Rules}) ->
    #{mode => Mode, no_spawn => S, inherit => I, default_action => D,
      rules => [case Act of
                    default -> {M, F, A};
                    _ -> #{match => {M, F, A}, action => Act}
                end || {M, F, A, Act} <- Rules]}.

%%% Files --------------------------------------------------------------------

%% @doc Write a policy to `Path': JSON when the name ends in `.json', else Erlang terms.
-spec to_file(t(), file:name_all()) -> ok | {error, term()}.
to_file(#seccomp_policy{spec = Spec} = P, Path) ->
    Text = case is_json(Path) of
               true -> to_json(P);
               false -> to_terms(Spec)
           end,
    case Text of
        {ok, Data} -> file:write_file(Path, Data);
        {error, _} = E -> E
    end.

%% A pid has no written form that reads back; only registered brokers do.
to_terms(#{default_action := D, rules := Rules} = Spec) ->
    Actions = [D | [A || #{action := A} <- Rules]],
    case [B || {trap, B} <- Actions, is_pid(B)] of
        [] -> {ok, io_lib:format("~p.~n", [Spec])};
        [Pid | _] -> {error, {unserialisable_broker, Pid}}
    end.

%% @doc Read and validate a policy file written by {@link to_file/2} or by hand.
-spec from_file(file:name_all()) -> {ok, t()} | {error, term()}.
from_file(Path) ->
    case is_json(Path) of
        true ->
            case file:read_file(Path) of
                {ok, Bin} -> from_json(Bin);
                {error, Why} -> {error, {file, Path, Why}}
            end;
        false ->
            case file:consult(Path) of
                {ok, [Map]} -> new(Map);
                {ok, Terms} -> {error, {invalid_policy_file, Path, {expected_one_term, length(Terms)}}};
                {error, Why} -> {error, {file, Path, Why}}
            end
    end.

%% @doc The policy as JSON text.
-spec to_json(t()) -> {ok, binary()} | {error, term()}.
to_json(#seccomp_policy{spec = Spec}) -> seccomp_nif:spec_to_json(to_native(Spec)).

%% @doc A policy from JSON text.
-spec from_json(iodata()) -> {ok, t()} | {error, term()}.
from_json(Json) ->
    case seccomp_nif:spec_from_json(iolist_to_binary(Json)) of
        {ok, Native} -> new(from_native(Native));
        {error, _} = E -> E
    end.

is_json(Path) -> string:lowercase(unicode:characters_to_list(filename:extension(Path))) =:= ".json".
