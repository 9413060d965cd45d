defmodule Seccomp.MediationTest do
  # Every way of starting a process through Seccomp.apply, under a blacklist
  # that names only :os: the process is restricted at its first instruction,
  # or the call is refused.
  use ExUnit.Case, async: false
  @moduletag :capture_log

  defmodule Probe do
    @moduledoc false
    # The first instruction of a started process reports whether it is restricted.
    def first(report) do
      send(report, {:first, self(), :seccomp.is_restricted(self())})

      receive do
        :stop -> :ok
      after
        2000 -> :ok
      end
    end

    def start_link(report), do: {:ok, spawn_link(fn -> first(report) end)}
    def agent(report), do: first(report)
  end

  defp restricted(fun) do
    task =
      Task.async(fn ->
        :ok = Seccomp.restrict(deny: [:os])

        try do
          fun.()
          :started
        rescue
          Seccomp.ViolationError ->
            :refused

          e in ErlangError ->
            case e.original do
              {:seccomp_violation, _} -> :refused
              {:seccomp_inheritance, _} -> :refused
              other -> {:error, other}
            end
        end
      end)

    Task.await(task, 10_000)
  end

  defp firsts(acc \\ []) do
    receive do
      {:first, pid, restricted?} ->
        send(pid, :stop)
        firsts([restricted? | acc])
    after
      300 -> acc
    end
  end

  defp assert_safe(outcome, firsts) do
    case outcome do
      :refused -> assert firsts == []
      :started -> assert Enum.all?(firsts), "an unrestricted process ran: #{inspect(firsts)}"
    end
  end

  setup do
    {:ok, tasks} = Task.Supervisor.start_link()
    {:ok, dyn} = DynamicSupervisor.start_link(strategy: :one_for_one)
    %{tasks: tasks, dyn: dyn}
  end

  test "Elixir process starters with MFA and fun forms", %{tasks: tasks, dyn: dyn} do
    me = self()
    fun = fn -> Probe.first(me) end

    vectors = [
      {Task, :start, [fun]},
      {Task, :start, [Probe, :first, [me]]},
      {Task, :async, [Probe, :first, [me]]},
      {Task, :start_link, [Probe, :first, [me]]},
      {Agent, :start, [Probe, :agent, [me]]},
      {Agent, :start, [fun]},
      {Task.Supervisor, :start_child, [tasks, Probe, :first, [me]]},
      {Task.Supervisor, :start_child, [tasks, fun, []]},
      {Task.Supervisor, :async_nolink, [tasks, Probe, :first, [me]]},
      {Task.Supervisor, :async_stream, [tasks, [1], fn _ -> Probe.first(me) end]},
      {DynamicSupervisor, :start_child,
       [dyn, %{id: :p, start: {Probe, :start_link, [me]}, restart: :temporary}]},
      {GenServer, :call,
       [dyn, {:start_child, {{Probe, :start_link, [me]}, :temporary, 5000, :worker, [Probe]}}]},
      {Process, :send_after,
       [
         dyn,
         {:"$gen_call", {me, make_ref()},
          {:start_child, {{Probe, :start_link, [me]}, :temporary, 5000, :worker, [Probe]}}},
         0
       ]},
      {Kernel, :send, [dyn, {:"$gen_cast", {:start_child, {Probe, :start_link, [me]}}}]},
      {Kernel, :apply, [fn -> spawn(fun) end, []]},
      {Kernel, :spawn, [fun]},
      {Process, :spawn, [fun, []]},
      {:timer, :apply_after, [0, Probe, :first, [me]]},
      {Node, :spawn, [node(), fun]}
    ]

    for {m, f, args} <- vectors do
      outcome = restricted(fn -> Seccomp.apply(m, f, args) end)
      assert outcome in [:started, :refused], "#{inspect({m, f})}: #{inspect(outcome)}"
      assert_safe(outcome, firsts())
    end
  end

  test "a blacklist shows what it leaves open" do
    {:ok, caps} = Seccomp.Policy.capabilities(deny: [:os])
    assert caps.os_commands -- [{:os, :cmd, 1}, {:os, :cmd, 2}] == caps.os_commands
    assert {:erlang, :spawn, 1} in caps.start_processes
    assert caps.code_loading == []
    {:ok, none} = Seccomp.Policy.capabilities(allow: [Enum])
    assert Enum.all?(Map.values(none), &(&1 == []))
    assert {:error, {:invalid_policy, _}} = Seccomp.Policy.capabilities(mode: :grey)
  end

  test "events cannot be read by a restricted process, nor the library reached" do
    assert :refused ==
             restricted(fn ->
               {:error, :not_permitted} = Seccomp.subscribe()
               Seccomp.apply(GenServer, :call, [:seccomp_events, {:subscribe, self()}])
             end)

    assert Process.whereis(:seccomp_events)
  end
end
