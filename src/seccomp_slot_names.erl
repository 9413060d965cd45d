%% @doc The module names of prepared-code slots, `'$seccomp_prepared_N'',
%% and whether a module is one: the sandbox refuses calls into any slot.
-module(seccomp_slot_names).

-export([name/1, is_slot/1]).

%% @doc The module of slot `Slot', marked as a slot from now on.
-spec name(pos_integer()) -> module().
name(Slot) ->
    Mod = list_to_atom("$seccomp_prepared_" ++ integer_to_list(Slot)),
    %% Written once per slot, never erased: no global garbage collection.
    case persistent_term:get({?MODULE, Mod}, false) of
        true -> ok;
        false -> persistent_term:put({?MODULE, Mod}, true)
    end,
    Mod.

%% @doc Whether `Module' is a slot of prepared code.
-spec is_slot(atom()) -> boolean().
is_slot(Module) -> persistent_term:get({?MODULE, Module}, false).
