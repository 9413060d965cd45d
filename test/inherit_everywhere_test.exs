defmodule Seccomp.InheritEverywhereTest do
  # The opt-in mode: children started by compiled code are restricted too.
  use ExUnit.Case, async: false

  defmodule Reporter do
    use GenServer

    def init(parent),
      do:
        (
          send(parent, {:init, Seccomp.check({:os, :cmd, 1})})
          {:ok, nil}
        )
  end

  defp restricted_process(fun) do
    me = self()

    Task.async(fn ->
      :ok = Seccomp.restrict(deny: [:os])
      :ok = Seccomp.inherit_everywhere(self())
      fun.(me)
    end)
    |> Task.await()
  end

  test "processes that compiled library code starts are restricted before they run" do
    restricted_process(fn me ->
      report = fn tag -> send(me, {tag, Seccomp.check({:os, :cmd, 1})}) end
      Task.async(fn -> report.(:task) end) |> Task.await()
      spawn(fn -> report.(:spawn) end)
      :erlang.spawn_opt(fn -> report.(:spawn_opt) end, [:link])
      :proc_lib.spawn(fn -> report.(:proc_lib) end)
      {:ok, _} = GenServer.start(Reporter, me)
      # grandchildren too
      spawn(fn -> spawn(fn -> report.(:grandchild) end) end)
    end)

    for tag <- [:task, :spawn, :spawn_opt, :proc_lib, :init, :grandchild] do
      assert_receive {^tag, {:deny, :error}}, 2000
    end
  end

  test "children see their restriction at their very first instruction" do
    results =
      restricted_process(fn _me ->
        parent = self()
        for _ <- 1..5000, do: spawn(fn -> send(parent, Seccomp.status(self()).mode) end)
        for _ <- 1..5000, do: receive(do: (mode -> mode))
      end)

    assert Enum.frequencies(results) == %{filter: 5000}
  end

  test "entries of such children disappear when they exit" do
    before = Seccomp.table_size()
    restricted_process(fn _ -> for _ <- 1..2000, do: spawn(fn -> :ok end) end)
    assert Seccomp.Test.Wait.eventually(fn -> Seccomp.table_size() <= before end)
  end

  test "only an unrestricted process may turn it on for another one" do
    other = spawn(fn -> Process.sleep(:infinity) end)

    assert {:error, :not_permitted} =
             Task.async(fn ->
               :ok = Seccomp.restrict(deny: [:os])
               Seccomp.inherit_everywhere(other)
             end)
             |> Task.await()

    assert {:error, {:badarg, :nope}} = Seccomp.inherit_everywhere(:nope)
  end
end
