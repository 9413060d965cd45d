defmodule Seccomp.ChurnTest do
  # Not async: it compares the whole table's size before and after.
  use ExUnit.Case, async: false

  @cycles Seccomp.Test.Soak.count(1_000_000, 50_000)

  @tag timeout: 600_000
  test "#{@cycles} spawn-restrict-exit cycles leave the table where it started" do
    policy = Seccomp.Policy.new!(allow: [String])
    before = Seccomp.table_size()
    workers = System.schedulers_online() * 2

    1..workers
    |> Enum.map(fn _ ->
      Task.async(fn ->
        for _ <- 1..div(@cycles, workers) do
          {pid, ref} = spawn_monitor(fn -> :ok = Seccomp.restrict(policy) end)
          receive do: ({:DOWN, ^ref, :process, ^pid, :normal} -> :ok)
        end
      end)
    end)
    |> Task.await_many(600_000)

    # Other tests' processes may still be exiting: at most where it started.
    assert Seccomp.Test.Wait.eventually(fn -> Seccomp.table_size() <= before end)
  end
end
