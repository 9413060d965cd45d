%% @doc Process flags and spawn options that sandboxed code may set. The
%% sandbox's enforcement runs in other processes at normal priority (the
%% keeper's deadline and samples) and relies on each member's heap limit:
%% a member at `high' or `max' priority that loops starves them and every
%% host process; a minimum heap or an error handler of its choosing is an
%% allocation or code the sandbox does not see, and so is a message queue
%% kept off the heap. Default deny: only the
%% flags and options named here.
-module(seccomp_sandbox_flags).

-export([process_flag/2, spawn_options/1]).

%% Nesting searched for spawn options (`[spawn_opt: [priority: :max]]').
-define(MAX_DEPTH, 8).

%% @doc Whether a sandboxed process may set `Flag' to `Value' on itself.
-spec process_flag(term(), term()) -> boolean().
process_flag(trap_exit, V) -> is_boolean(V);
process_flag(priority, P) -> P =:= low orelse P =:= normal;
%% An off-heap message queue is outside the heap limit: senders could fill it
%% without bound.
process_flag(message_queue_data, D) -> D =:= on_heap;
process_flag(_Flag, _Value) -> false.

%% @doc Whether the arguments of a call that starts a process hold no spawn
%% option but those that keep the child within the sandbox's reach: no
%% priority above normal, no heap sizes (the sandbox sets the heap limit
%% itself), no other flags. Funs are not looked into.
-spec spawn_options(list()) -> boolean().
spawn_options(Args) -> walk(Args, 0).

walk(_T, Depth) when Depth > ?MAX_DEPTH -> true;
%% A name the child would be registered under: the VM's names are not the
%% sandbox's (`{local, Name}', `name: Name', `{global, _}', `{via, _, _}').
walk({Tag, Name}, _Depth) when (Tag =:= local orelse Tag =:= name), is_atom(Name), Name =/= nil ->
    false;
walk({global, _}, _Depth) -> false;
walk({via, _, _}, _Depth) -> false;
walk({priority, P}, _Depth) -> P =:= low orelse P =:= normal;
walk({Option, _}, _Depth) when Option =:= min_heap_size; Option =:= min_bin_vheap_size;
                               Option =:= max_heap_size; Option =:= fullsweep_after;
                               Option =:= message_queue_data; Option =:= async_dist ->
    false;
walk([H | T], Depth) -> walk(H, Depth + 1) andalso walk(T, Depth);
walk(T, Depth) when is_tuple(T) -> walk(tuple_to_list(T), Depth + 1);
walk(_T, _Depth) -> true.
