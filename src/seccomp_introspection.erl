%% @doc What sandboxed code may learn about the VM from its introspection
%% built-ins, and what it may print to the VM's own console: both are the
%% host's state, refused whatever the policy.
%%
%% `erlang:system_info/1' answers with every process's mailbox and stack
%% (`procs'), the command line with the cookie (`emu_args'), the loaded
%% code, the distribution; the process and port lists, the registered names
%% and port information address or describe the host's processes. Default
%% deny: `system_info/1' and `statistics/1' answer only for the named keys
%% below (counts, sizes and versions); the built-ins that list or describe
%% the host's processes, ports, names, memory or code are refused whatever
%% their arguments. The console writers are every `erlang' export whose name holds
%% `display' (`display/1', `display_string/1,2', `display_nl/0',
%% `process_display/2'), read from the module's exports.
-module(seccomp_introspection).

-export([allowed/2, judged/2, console/1, sinks/0]).

%% Keys of `erlang:system_info/1' that describe the build and the VM's
%% size, nothing it holds.
-define(SYSTEM_INFO,
        [atom_count, atom_limit, build_type, compat_rel, cpu_topology, debug_compiled,
         dirty_cpu_schedulers, dirty_cpu_schedulers_online, dirty_io_schedulers, driver_version,
         emu_flavor, emu_type, end_time, endian, ets_count, ets_limit, fullsweep_after, heap_type,
         kernel_poll, logical_processors, logical_processors_available, logical_processors_online,
         machine, max_heap_size, min_bin_vheap_size, min_heap_size, nif_version, otp_release,
         port_count, port_limit, process_count, process_limit, schedulers, schedulers_online,
         smp_support, start_time, system_architecture, system_version, threads, thread_pool_size,
         time_correction, time_offset, time_warp_mode, tolerant_timeofday, version, wordsize,
         {wordsize, internal}, {wordsize, external}]).
%% Keys of `erlang:statistics/1' that are counts and times of the whole VM.
-define(STATISTICS,
        [runtime, wall_clock, reductions, exact_reductions, context_switches,
         garbage_collection, io, run_queue, run_queue_lengths, run_queue_lengths_all,
         total_run_queue_lengths, total_run_queue_lengths_all, active_tasks, active_tasks_all,
         total_active_tasks, total_active_tasks_all]).
%% Built-ins that list or describe the host's processes, ports, names,
%% memory or code: refused whatever their arguments.
-define(REFUSED,
        [{memory, 0}, {memory, 1}, {processes, 0}, {ports, 0}, {registered, 0},
         {port_info, 1}, {port_info, 2}, {loaded, 0}, {pre_loaded, 0}, {system_monitor, 0},
         {system_monitor, 1}, {system_monitor, 2}, {system_profile, 0}, {system_profile, 2},
         {get_cookie, 0}, {get_cookie, 1}]).

%% @doc Whether sandboxed code may call `erlang:F' with `Args'.
-spec allowed(atom(), list()) -> boolean().
allowed(system_info, [Key]) ->
    lists:member(Key, ?SYSTEM_INFO);
allowed(statistics, [Key]) ->
    lists:member(Key, ?STATISTICS);
allowed(F, Args) ->
    not console(F) andalso not lists:member({F, length(Args)}, ?REFUSED).

%% @doc Whether calls of `erlang:F/A' are judged here (never compiled as
%% direct calls).
-spec judged(atom(), arity()) -> boolean().
judged(F, A) ->
    F =:= system_info orelse F =:= statistics orelse console(F) orelse lists:member({F, A}, ?REFUSED).

%% @doc Whether `erlang:F' writes to the VM's own console, past every group
%% leader.
-spec console(atom()) -> boolean().
console(F) ->
    string:find(atom_to_list(F), "display") =/= nomatch.

%% @doc The introspection and console built-ins that exist in the running
%% VM: under a denylist, library code that reaches one is refused too (see
%% `seccomp_denylist'). `system_info/1' and `statistics/1' are judged by
%% their keys where the code passes data.
-spec sinks() -> [mfa()].
sinks() ->
    [{erlang, F, A} || {F, A} <- erlang:module_info(exports),
                       console(F) orelse lists:member({F, A}, ?REFUSED)].
