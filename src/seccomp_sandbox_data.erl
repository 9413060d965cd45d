%% @doc What data handed to library code may name.
%%
%% Library code applies what data names: a struct's module (protocols,
%% Access), a module handed over as a callback (`Enum.sort(L, Mod)'), a
%% struct's module-valued field (`calendar'), `{M, F, A}' tuples, and it
%% messages the processes data names. Before such code runs:
%% <ul>
%% <li>a struct's module must be allowed;</li>
%% <li>an atom that names a module, as an argument, in a tuple (but for the
%%     key of a pair) or as a struct's field, must name one whose every
%%     function the policy allows and the handler would merely call;</li>
%% <li>a registered name as an argument, in a tuple or as a struct's field
%%     must be one the code may send to, and every pid a member of the
%%     sandbox (or in `send_to'); no ports;</li>
%% <li>an ETS table, named there or by its reference at any depth, must be
%%     one the sandbox owns: library code reads and writes the tables it is
%%     given (`dets:from_ets(D, ac_tab)' copies the applications'
%%     environment) where the handler's own check of `ets' does not see.</li>
%% </ul>
-module(seccomp_sandbox_data).

-include("seccomp_sandbox.hrl").

-export([no_foreign_code/3, holds_capability/1]).

%% @doc Refuse the call `MFA' unless its arguments name nothing outside the policy.
-spec no_foreign_code(mfa(), list(), seccomp_sandbox_ctx:ctx()) -> ok.
no_foreign_code(MFA, Args, Ctx) ->
    lists:foreach(fun(A) when is_atom(A) -> named(A, MFA, Ctx), registered(A, MFA, Ctx), own_table(A, MFA, Ctx);
                     (_) -> ok
                  end, Args),
    scan([Args], MFA, Ctx).

scan([], _MFA, _Ctx) -> ok;
scan([T | Rest], MFA, Ctx) when is_list(T) -> scan_list(T, Rest, MFA, Ctx);
scan([T | Rest], MFA, Ctx) when is_tuple(T) ->
    Items = case T of
                %% `{Name, Node}' addresses a registered process: judged as
                %% the name itself.
                {Name, Node} when is_atom(Name), is_atom(Node), Name =/= Node ->
                    case node_name(Node) of
                        true -> [Name, Node];
                        false -> [Node]
                    end;
                {Key, Value} when is_atom(Key) -> [Value];
                %% `{M, F, Arity}' describes a function (`%Task{mfa: ...}',
                %% stack traces); what is applied has a list of arguments.
                {_M, _F, Arity} when is_integer(Arity) -> [];
                _ -> tuple_to_list(T)
            end,
    named_all(Items, MFA, Ctx),
    scan_list(tuple_to_list(T), Rest, MFA, Ctx);
scan([T | Rest], MFA, Ctx) when is_map(T) ->
    case T of
        #{'__struct__' := S} when is_atom(S) ->
            case seccomp_sandbox_verdict:allowed(S, '__struct__', 0, Ctx) of
                allow -> namespace_denied(S, Ctx) andalso seccomp_sandbox_verdict:deny({S, '__struct__', 0}, Ctx);
                {deny, _} -> seccomp_sandbox_verdict:deny({S, '__struct__', 0}, Ctx)
            end,
            named_all([V || V <- maps:values(T), V =/= S], MFA, Ctx);
        _ -> ok
    end,
    scan_list(maps:keys(T), [maps:values(T) | Rest], MFA, Ctx);
scan([T | Rest], MFA, Ctx) when is_pid(T); is_port(T) ->
    member_process(T, MFA, Ctx),
    scan(Rest, MFA, Ctx);
scan([T | Rest], MFA, Ctx) when is_reference(T) ->
    own_table(T, MFA, Ctx),
    scan(Rest, MFA, Ctx);
scan([T | Rest], MFA, Ctx) when is_integer(T) ->
    %% Library code prints, parses and divides integers without yielding.
    seccomp_cost:integer_op(operand, [T]) orelse seccomp_sandbox_ctx:memory_limit(Ctx),
    scan(Rest, MFA, Ctx);
scan([_ | Rest], MFA, Ctx) -> scan(Rest, MFA, Ctx).

%% Under a denylist, denying a module denies its namespace's structs too:
%% `File.Stream''s protocol implementations are `File''s code, called
%% directly. (Under an allowlist the struct's module itself had to be named.)
namespace_denied(_S, #ctx{denylist = false}) ->
    false;
namespace_denied(S, Ctx) ->
    case binary:split(atom_to_binary(S, utf8), <<".">>, [global]) of
        [<<"Elixir">> | Segments] when length(Segments) > 1 ->
            Parents = tl(lists:foldl(fun(Seg, [])  -> [[<<"Elixir.">>, Seg]];
                                                    (Seg, [P | _] = Acc) -> [[P, $., Seg] | Acc]
                                                 end, [], Segments)),
            lists:any(fun(P) ->
                              case catch_existing(iolist_to_binary(P)) of
                                  none -> false;
                                  M -> seccomp_sandbox_verdict:allowed(M, '__info__', 1, Ctx) =/= allow
                              end
                      end, Parents);
        _ ->
            false
    end.

catch_existing(Name) ->
    try binary_to_existing_atom(Name, utf8) catch error:badarg -> none end.

%% Walk a (possibly improper) list, pushing onto the work list only the items
%% that can hold a map, a process or a table, or are bignums: a list of numbers or a string costs one
%% test per item.
scan_list([H | T], Rest, MFA, Ctx) when is_list(H); is_tuple(H); is_map(H); is_pid(H); is_port(H);
                                         is_reference(H);
                                         is_integer(H), (H > ?SMALL orelse H < -?SMALL) ->
    scan_list(T, [H | Rest], MFA, Ctx);
scan_list([_ | T], Rest, MFA, Ctx) -> scan_list(T, Rest, MFA, Ctx);
scan_list([], Rest, MFA, Ctx) -> scan(Rest, MFA, Ctx);
scan_list(Tail, Rest, MFA, Ctx) -> scan([Tail | Rest], MFA, Ctx).

%% (A process the caller listed in `send_to' is sent to, with `send' and
%% `!' only: a library function given it would make a request of it, a
%% call, a cast, a stop, that its behaviour acts on.)
member_process(Pid, MFA, #ctx{tab = Tab} = Ctx) when is_pid(Pid) ->
    Pid =:= self() andalso Tab =/= caller
        orelse (Tab =/= caller andalso seccomp_sandbox_members:is_member(Ctx, Pid))
        orelse seccomp_sandbox_verdict:deny(MFA, Ctx);
member_process(_Port, MFA, Ctx) ->
    seccomp_sandbox_verdict:deny(MFA, Ctx).

%% An ETS table (a name or a reference) whose owner is not one of the
%% sandbox's processes; in caller mode every table is the host's.
own_table(T, MFA, #ctx{tab = Tab} = Ctx) ->
    case table_owner(T) of
        none -> ok;
        Owner ->
            Tab =/= caller andalso (Owner =:= self() orelse seccomp_sandbox_members:is_member(Ctx, Owner))
                orelse seccomp_sandbox_verdict:deny(MFA, Ctx)
    end.

table_owner(T) ->
    try ets:info(T, owner) of
        Owner when is_pid(Owner) -> Owner;
        _ -> none
    catch
        error:badarg -> none
    end.

registered(Name, MFA, Ctx) ->
    erlang:whereis(Name) =:= undefined orelse seccomp_sandbox_verdict:deny(MFA, Ctx).

%% Whether an atom is this node's name or one in the form of a node name.
node_name(A) -> A =:= node() orelse string:find(atom_to_list(A), "@") =/= nomatch.

%% An atom a tuple or a struct's field holds may name a module or a
%% registered process (`%IO.Stream{device: :user}' writes to the VM's
%% console): both are judged as if passed directly.
named_all(Items, MFA, Ctx) ->
    lists:foreach(fun(A) when is_atom(A) -> named(A, MFA, Ctx), registered(A, MFA, Ctx), own_table(A, MFA, Ctx);
                     (_) -> ok
                  end, Items).

%% An atom that names a module (loaded or on the code path) may be handed to
%% library code only if every function of that module is allowed and plain.
named(A, _MFA, _Ctx) when A =:= true; A =:= false; A =:= nil; A =:= undefined; A =:= ok; A =:= error ->
    ok;
named(A, _MFA, Ctx) ->
    case erlang:module_loaded(A) orelse loadable(A, Ctx) of
        true ->
            case [MFA || {F, Ar} <- A:module_info(exports), MFA <- [{A, F, Ar}], not nameable(MFA, Ctx)] of
                [] -> ok;
                [First | _] -> seccomp_sandbox_verdict:deny(First, Ctx)
            end;
        false ->
            ok
    end.

%% A module on the code path that is not loaded yet: loaded (as a call of
%% it would) when the policy allows it, so its functions can be judged.
loadable(A, Ctx) ->
    seccomp_args:is_module_on_path(A) andalso
        case seccomp_sandbox_verdict:allowed(A, module_info, 0, Ctx) =:= allow andalso code:ensure_loaded(A) of
            {module, A} -> true;
            _ -> seccomp_sandbox_verdict:deny({A, module_info, 0}, Ctx)
        end.

nameable({M, F, A}, Ctx) ->
    seccomp_sandbox_calls:ordinary(M, F, A) andalso seccomp_sandbox_verdict:allowed(M, F, A, Ctx) =:= allow
        andalso lists:member(seccomp_profiles:kind(M, F, A), [plain, dispatch])
        andalso not seccomp_sandbox_state:always_refused(M, F, A).

%% @doc Whether a decoded term holds a fun (code that would run unchecked)
%% or a pid, port or reference: identifiers that name what the sandbox did
%% not make (a host process, a timer, an alias, a table) are never made of
%% data.
-spec holds_capability([term()]) -> boolean().
holds_capability([]) -> false;
holds_capability([T | _Rest]) when is_function(T); is_pid(T); is_port(T); is_reference(T) -> true;
holds_capability([T | Rest]) when is_list(T) -> holds_capability(improper_items(T, Rest));
holds_capability([T | Rest]) when is_tuple(T) -> holds_capability(tuple_to_list(T) ++ Rest);
holds_capability([T | Rest]) when is_map(T) -> holds_capability(maps:keys(T) ++ maps:values(T) ++ Rest);
holds_capability([_ | Rest]) -> holds_capability(Rest).

improper_items([H | T], Rest) -> [H | improper_items(T, Rest)];
improper_items([], Rest) -> Rest;
improper_items(Tail, Rest) -> [Tail | Rest].

