%% @doc The options of `seccomp_eval:eval/2' (and of prepared code):
%% validation, defaults, and the sandbox's own policy layer.
-module(seccomp_options).

-export([options/1]).

-define(DEFAULTS, #{policy => pure, language => erlang, bindings => [], timeout => 5000,
                    max_heap_size => 4000000, max_binary => 16000000,
                    max_reductions => 200000000, max_processes => 100, max_atoms => 100,
                    max_output => 65536, output => discard, send_to => [], allow => [],
                    deny => [], max_source => 65536}).

%% @doc Validate options and fill in the defaults.
-spec options(map() | list()) -> {ok, seccomp_eval:options()} | {error, seccomp_eval:reason()}.
options(Opts) when is_list(Opts) ->
    try maps:from_list(Opts) of M -> options(M)
    catch error:badarg -> {error, {invalid_option, Opts}}
    end;
options(Opts) when is_map(Opts) ->
    case maps:keys(maps:without(maps:keys(?DEFAULTS), Opts)) of
        [K | _] ->
            {error, {invalid_option, K}};
        [] ->
            O = maps:merge(?DEFAULTS, Opts),
            try
                [valid(K, maps:get(K, O)) || K <- maps:keys(O)],
                {ok, O#{policy := sandbox_policy(O)}}
            catch
                throw:{invalid, Why} -> {error, Why}
            end
    end;
options(Other) ->
    {error, {invalid_option, Other}}.

valid(K, V) when K =:= timeout; K =:= max_heap_size; K =:= max_binary; K =:= max_reductions;
                 K =:= max_processes; K =:= max_atoms; K =:= max_output; K =:= max_source ->
    is_integer(V) andalso V >= 0 orelse throw({invalid, {invalid_option, {K, V}}});
valid(language, V) ->
    V =:= erlang orelse V =:= elixir orelse throw({invalid, {invalid_option, {language, V}}});
valid(output, V) ->
    V =:= discard orelse V =:= capture orelse is_pid(V)
        orelse throw({invalid, {invalid_option, {output, V}}});
valid(bindings, V) ->
    is_map(V) orelse (is_list(V) andalso lists:all(fun({N, _}) -> is_atom(N); (_) -> false end, V))
        orelse throw({invalid, {invalid_option, {bindings, V}}});
valid(K, V) when K =:= send_to; K =:= allow; K =:= deny ->
    is_list(V) orelse throw({invalid, {invalid_option, {K, V}}});
valid(policy, _) ->
    ok.

%% The sandbox's own layer: the chosen policy, extended by `allow' and
%% narrowed by `deny', always passed on to the sandbox's children. Compiling a
%% profile is most of an evaluation's fixed cost, so plain profiles are
%% compiled once per VM. A denylist also denies what reaches its denials or
%% the VM's capabilities through compiled code (see `seccomp_denylist').
sandbox_policy(O) -> seccomp_denylist:extend(layer(O)).

layer(#{policy := Name, allow := [], deny := []}) when is_atom(Name) ->
    Key = {?MODULE, profile, Name},
    case persistent_term:get(Key, undefined) of
        undefined ->
            Policy = build_policy(#{policy => Name, allow => [], deny => []}),
            persistent_term:put(Key, Policy),
            Policy;
        Policy ->
            Policy
    end;
layer(O) ->
    case O of
        #{policy := P, allow := [], deny := []} ->
            case seccomp_policy:is_policy(P) andalso maps:get(inherit, seccomp_policy:spec(P)) of
                true -> P;
                false -> build_policy(O)
            end;
        _ ->
            build_policy(O)
    end.

build_policy(#{policy := P, allow := Allow, deny := Deny}) ->
    Spec = case P of
               Name when is_atom(Name) ->
                   case seccomp_profiles:profile(Name) of
                       {ok, Map} -> Map;
                       {error, Why} -> throw({invalid, Why})
                   end;
               _ ->
                   case seccomp_policy:new(P) of
                       {ok, Policy} -> seccomp_policy:spec(Policy);
                       {error, Why} -> throw({invalid, Why})
                   end
           end,
    Rules = maps:get(rules, Spec, []) ++ Allow ++ [#{match => D, action => error} || D <- Deny],
    case seccomp_policy:new(Spec#{rules => Rules, inherit => true}) of
        {ok, Policy1} -> Policy1;
        {error, Why1} -> throw({invalid, Why1})
    end.
