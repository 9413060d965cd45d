defmodule Seccomp.CoreReachTest do
  # What a restricted caller's arguments name is checked, in Elixir's forms:
  # code named as data (module-function pairs, external funs) like a call of
  # the caller, system and library processes out of reach, functions that
  # change the node only under a whitelist. The policy denies :os and the
  # probe below; none of the functions called is named.
  use ExUnit.Case, async: false
  @moduletag :capture_log

  defmodule Probe do
    @moduledoc false
    # The probe the policy forbids: it must never run.
    def forbidden(report), do: send(report, {:forbidden_ran, self()})
    def forbidden, do: forbidden(Process.whereis(:core_reach_collector))
  end

  @policy [deny: [:os, {Probe, :forbidden, :_}]]

  defp restricted(policy \\ @policy, fun) do
    task =
      Task.async(fn ->
        :ok = Seccomp.restrict(policy)

        try do
          fun.()
        rescue
          Seccomp.ViolationError ->
            :refused

          e in ErlangError ->
            if match?({:seccomp_violation, _}, e.original), do: :refused, else: {:error, e}
        catch
          :exit, reason -> {:exit, reason}
        end
      end)

    Task.await(task, 15_000)
  end

  defp refute_probe_ran, do: refute_receive({:forbidden_ran, _}, 300)

  test "MFA and external-fun forms of Task, Agent, Supervisor and HOFs are checked as calls" do
    me = self()
    {:ok, ag} = Agent.start(fn -> [] end)
    {:ok, tasks} = Task.Supervisor.start_link()

    vectors = [
      {Task, :start, [Probe, :forbidden, [me]]},
      {Task, :async, [Probe, :forbidden, [me]]},
      {Agent, :start, [Probe, :forbidden, [me]]},
      {Agent, :get, [ag, Probe, :forbidden, []]},
      {Agent, :update, [ag, Probe, :forbidden, []]},
      {Task, :async_stream, [[me], Probe, :forbidden, []]},
      {Task.Supervisor, :start_child, [tasks, Probe, :forbidden, [me]]},
      {Task.Supervisor, :async_stream, [tasks, [me], Probe, :forbidden, []]},
      {Supervisor, :start_link,
       [[%{id: :x, start: {Probe, :forbidden, [me]}}], [strategy: :one_for_one]]},
      {Enum, :map, [[me], &Probe.forbidden/1]},
      {:lists, :zipwith3, [&:erlang.apply/3, [Probe], [:forbidden], [[me]]]},
      {Kernel, :apply, [&:erlang.apply/3, [Probe, :forbidden, [me]]]},
      {:timer, :tc, [Probe, :forbidden, [me]]}
    ]

    outcomes = for {m, f, a} = v <- vectors, do: {v, restricted(fn -> Seccomp.apply(m, f, a) end)}
    assert Enum.reject(outcomes, fn {_, r} -> r == :refused end) == []
    refute_probe_ran()
    Agent.stop(ag)
  end

  test "Seccomp's spawn functions and task starts check the fun they are given" do
    Process.register(self(), :core_reach_collector)
    {:ok, tasks} = Task.Supervisor.start_link()

    vectors = [
      fn -> Seccomp.spawn(&Probe.forbidden/0) end,
      fn -> Seccomp.spawn_link(&Probe.forbidden/0) end,
      fn -> Seccomp.spawn_monitor(&Probe.forbidden/0) end,
      fn -> Seccomp.spawn_opt(&Probe.forbidden/0, []) end,
      fn -> Seccomp.task_start_child(tasks, &Probe.forbidden/0) end,
      fn -> Seccomp.task_async(tasks, &Probe.forbidden/0) end,
      fn -> Seccomp.spawn(:erlang, :apply, [&Probe.forbidden/1, [self()]]) end
    ]

    assert Enum.map(vectors, &restricted/1) == List.duplicate(:refused, length(vectors))
    Process.unregister(:core_reach_collector)
    refute_probe_ran()
  end

  test "system and library processes are out of reach by name and pid" do
    call = {:"$gen_call", {self(), make_ref()}, {:call, Probe, :forbidden, [self()], :user}}

    vectors =
      for dest <- [
            :rex,
            Process.whereis(:rex),
            :code_server,
            :kernel_safe_sup,
            :seccomp_events,
            :application_controller,
            :logger
          ],
          v <- [
            {GenServer, :call, [dest, {:call, :erlang, :self, [], :user}]},
            {GenServer, :cast, [dest, {:cast, :erlang, :self, [], :user}]},
            {Kernel, :send, [dest, call]},
            {Process, :send_after, [dest, call, 0]},
            {Process, :exit, [dest, :kill]},
            {Supervisor, :terminate_child, [dest, :seccomp_events]}
          ],
          do: v

    outcomes = for {m, f, a} = v <- vectors, do: {v, restricted(fn -> Seccomp.apply(m, f, a) end)}
    assert Enum.reject(outcomes, fn {_, r} -> r == :refused end) == []
    refute_probe_ran()
    assert Process.alive?(Process.whereis(:seccomp_events))
  end

  test "functions that change the node need a whitelist that names them" do
    for {m, f, a} <- [
          {Application, :put_env, [:kernel, :core_reach_key, 1]},
          {Application, :stop, [:beam_seccomp]},
          {Application, :load, [:rt_app]},
          {Node, :start, [:rt_node]},
          {Node, :set_cookie, [:pwned]},
          {:logger, :add_handler, [:rt, :logger_std_h, %{}]},
          {:net_kernel, :start, [[:rt_node, :shortnames]]}
        ] do
      assert restricted(fn -> Seccomp.apply(m, f, a) end) == :refused
    end

    assert Application.get_env(:kernel, :core_reach_key) == nil
    assert node() == :nonode@nohost

    assert restricted([allow: [{Application, :put_env, 3}, {:application, :set_env, 4}]], fn ->
             Seccomp.apply(Application, :put_env, [:kernel, :core_reach_key, 1])
           end) == :ok

    assert Application.get_env(:kernel, :core_reach_key) == 1
    Application.delete_env(:kernel, :core_reach_key)
  end

  test "a start that returns a process it did not start hands nothing out" do
    victim = spawn(fn -> receive do: (:stop -> :ok) end)
    {:ok, sup} = DynamicSupervisor.start_link(strategy: :one_for_one)
    spec = %{id: :v, start: {:erlang, :list_to_tuple, [[:ok, victim]]}}
    assert {:error, _} = restricted(fn -> Seccomp.start_child(sup, spec) end)
    refute Seccomp.status(victim).mode == :filter
    assert Process.alive?(victim)
    assert DynamicSupervisor.which_children(sup) == []
    send(victim, :stop)
  end

  test "the library cannot be switched off, and its names cannot be taken" do
    before = Enum.map([:beam_seccomp_sup, :seccomp_events, :seccomp_prepared], &Process.whereis/1)

    for {m, f, a} <- [
          {Supervisor, :terminate_child, [:beam_seccomp_sup, :seccomp_events]},
          {Application, :stop, [:beam_seccomp]},
          {:timer, :exit_after, [10, :seccomp_events, :kill]},
          {:proc_lib, :stop, [:seccomp_prepared]},
          {Process, :register, [self(), :seccomp_events]},
          {GenServer, :call, [:seccomp_events, {:subscribe, self()}]}
        ] do
      assert restricted(fn -> Seccomp.apply(m, f, a) end) == :refused
    end

    Process.sleep(300)

    assert Enum.map([:beam_seccomp_sup, :seccomp_events, :seccomp_prepared], &Process.whereis/1) ==
             before
  end

  test "no_spawn covers every function that can start a process" do
    for {m, f, a} <- [
          {Task, :start, [fn -> :ok end]},
          {Task, :start, [:timer, :sleep, [100]]},
          {Agent, :start, [fn -> 0 end]},
          {:proc_lib, :spawn, [:timer, :sleep, [100]]},
          {:erlang, :spawn_opt, [:timer, :sleep, [100], []]},
          {GenServer, :start, [Agent.Server, {fn -> 0 end, nil}]}
        ] do
      assert restricted([deny: [:os], no_spawn: true], fn -> Seccomp.apply(m, f, a) end) == :refused
    end
  end
end
