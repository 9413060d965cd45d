defmodule Seccomp.PrepareCyclesTest do
  # Preparing and releasing distinct sources, over and over, must not grow the
  # atom table, the loaded modules or memory.
  use ExUnit.Case, async: false
  import Seccomp.Test.Wait, only: [eventually: 2]

  @cycles Seccomp.Test.Soak.count(100_000, 3_000)

  defp cycle(i) do
    {code, opts, bindings, expected} =
      case rem(i, 2) do
        0 -> {"x * #{i} + y", [bindings: [:x, :y]], [x: 2, y: 1], 2 * i + 1}
        1 -> {"X * #{i} + Y.", [language: :erlang], [X: 2, Y: 1], 2 * i + 1}
      end

    # One cycle in ten warms a pool too.
    mode = if rem(i, 10) == 0, do: [mode: :pool, pool_size: 1], else: [mode: :caller]
    {:ok, prepared} = Seccomp.Eval.prepare(code, opts ++ mode)
    {:ok, ^expected, _} = Seccomp.Eval.run(prepared, bindings)
    :ok = Seccomp.Eval.release(prepared)
  end

  defp run_cycles(range) do
    range
    |> Task.async_stream(&cycle/1, max_concurrency: System.schedulers_online(), ordered: false)
    |> Enum.each(fn {:ok, :ok} -> :ok end)

    assert eventually(fn -> :seccomp_prepared.in_use().draining == 0 end, 3000)
  end

  defp snapshot do
    for pid <- Process.list(), do: :erlang.garbage_collect(pid)

    %{
      atoms: :erlang.system_info(:atom_count),
      modules: length(:erlang.loaded()),
      memory: :erlang.memory(:total),
      processes: length(Process.list()),
      live: :seccomp_prepared.in_use().live
    }
  end

  @tag timeout: 900_000
  test "#{@cycles} prepare/run/release cycles of distinct sources leave nothing behind" do
    # Warm up: the slots the concurrent cycles use, and the code they call.
    run_cycles(1..1000)
    # (twice: the first snapshot loads what taking one needs)
    _ = snapshot()
    before = snapshot()
    run_cycles(1001..(1000 + @cycles))
    after_cycles = snapshot()

    grown = Map.new(before, fn {k, v} -> {k, after_cycles[k] - v} end)
    assert grown.atoms <= 10
    assert grown.modules <= 2
    assert grown.processes <= 5
    assert grown.live == 0
    assert grown.memory < 16_000_000
  end
end
