%% @doc Printing from sandboxed code. The printing functions of `io' and
%% Elixir's `IO' that write to the standard output are allowed by the
%% profiles, and the handler carries them out here: only to the sandbox's
%% own group leader (its output capture), never to another device
%% (`standard_error', `user', a pid or a name), and in caller mode (no
%% capture of its own) nowhere. A value the printing would convert with its
%% own protocol code (`String.Chars', `Inspect') is converted through the
%% handler first, like any call of the sandboxed code.
-module(seccomp_output).

-export([rules/0, is_printer/3, own_capture/0, print/3]).

-export_type([device/0]).

%% Where the sandbox's output goes: its capture, or nowhere.
-type device() :: pid() | discard.

%% {Module, Function, Arities}: the printers, and where their device
%% argument is (`first' for the arities that take one).
-define(PRINTERS,
        [{io, format, [1, 2, 3]}, {io, fwrite, [1, 2, 3]}, {io, put_chars, [1, 2]},
         {io, nl, [0, 1]}, {io, write, [1, 2]},
         {'Elixir.IO', puts, [1, 2]}, {'Elixir.IO', write, [1, 2]},
         {'Elixir.IO', inspect, [1, 2, 3]}]).

%% @doc Policy rules allowing the printers.
-spec rules() -> [mfa()].
rules() -> [{M, F, A} || {M, F, As} <- ?PRINTERS, A <- As].

%% @doc Whether `M:F/A' is a printer (`seccomp_profiles:kind/3').
-spec is_printer(module(), atom(), arity()) -> boolean().
is_printer(M, F, A) ->
    lists:any(fun({M1, F1, As}) -> M1 =:= M andalso F1 =:= F andalso lists:member(A, As) end,
              ?PRINTERS).

%% @doc The calling process's group leader when it is an output capture
%% (a sandbox's), `discard' otherwise.
-spec own_capture() -> device().
own_capture() ->
    GL = group_leader(),
    case erlang:process_info(GL, initial_call) of
        {initial_call, Call} ->
            case seccomp_capture:is_initial_call(Call) of
                true -> GL;
                false -> discard
            end;
        undefined -> discard
    end.

%% @doc Carry out printer `M:F(Args...)' on `Device'. `Convert(M, F, Args)'
%% is a checked call of the sandboxed code. `refused' for a device other
%% than the standard output.
-spec print({module(), atom(), [term()]}, device(), fun((module(), atom(), [term()]) -> term())) ->
          {ok, term()} | refused.
print({M, F, Args}, Device, Convert) ->
    case explicit(M, F, Args) of
        {standard, Rest} -> {ok, carry_out(M, F, Rest, Device, Convert)};
        other_device -> refused
    end.

%% The arguments without the device, when it is the standard output.
explicit(io, F, [Dev | Rest]) when (F =:= format orelse F =:= fwrite), length(Rest) =:= 2 -> standard(Dev, Rest);
explicit(io, F, [Format]) when F =:= format; F =:= fwrite -> {standard, [Format, []]};
explicit(io, put_chars, [Dev, Chars]) -> standard(Dev, [Chars]);
explicit(io, nl, [Dev]) -> standard(Dev, []);
explicit(io, write, [Dev, Term]) -> standard(Dev, [Term]);
explicit('Elixir.IO', F, [Dev, Item]) when F =:= puts; F =:= write -> standard(Dev, [Item]);
explicit('Elixir.IO', inspect, [Dev, Item, Opts]) -> standard(Dev, [Item, Opts]);
explicit(_M, _F, Args) -> {standard, Args}.

standard(Dev, Rest) when Dev =:= standard_io; Dev =:= stdio -> {standard, Rest};
standard(_Dev, _Rest) -> other_device.

carry_out('Elixir.IO', inspect, [Item], Device, Convert) ->
    carry_out('Elixir.IO', inspect, [Item, []], Device, Convert);
carry_out('Elixir.IO', inspect, [Item, Opts], Device, Convert) when is_list(Opts) ->
    {Label, InspectOpts} = case lists:keytake(label, 1, Opts) of
                               {value, {label, L}, Rest} -> {[Convert('Elixir.String.Chars', to_string, [L]), <<": ">>], Rest};
                               false -> {[], Opts}
                           end,
    Text = Convert('Elixir.Kernel', inspect, [Item, InspectOpts]),
    ok = write(Device, [Label, Text, $\n]),
    Item;
carry_out('Elixir.IO', inspect, [Item, Opts], _Device, _Convert) ->
    erlang:error(badarg, [Item, Opts]);
carry_out('Elixir.IO', F, [Item], Device, Convert) ->
    Text = case is_binary(Item) of
               true -> Item;
               false -> Convert('Elixir.String.Chars', to_string, [Item])
           end,
    write(Device, case F of puts -> [Text, $\n]; write -> Text end);
carry_out(io, _F, _Args, discard, _Convert) ->
    ok;
carry_out(io, F, Args, Device, _Convert) ->
    erlang:apply(io, F, [Device | Args]).

write(discard, _Chars) -> ok;
write(Device, Chars) -> io:put_chars(Device, Chars).
