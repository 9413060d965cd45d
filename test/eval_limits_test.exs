defmodule Seccomp.EvalLimitsTest do
  # Resource exhaustion: each attack is refused within its limit and leaves
  # nothing behind.
  use ExUnit.Case, async: false
  @moduletag :capture_log

  defp eval(code, opts \\ []), do: Seccomp.Eval.eval(code, opts)

  defp timed(fun) do
    {us, result} = :timer.tc(fun)
    {div(us, 1000), result}
  end

  test "an infinite loop times out" do
    {ms, result} = timed(fn -> eval("Stream.cycle([1]) |> Enum.each(& &1)", timeout: 200) end)
    assert result == {:error, :timeout}
    assert ms < 2000
  end

  test "unbounded recursion hits the heap limit" do
    assert {:error, :memory_limit} =
             eval("f = fn f, n -> 1 + f.(f, n + 1) end; f.(f, 0)", max_heap_size: 1_000_000)
  end

  test "a tight loop hits the reduction limit" do
    assert {:error, :reduction_limit} =
             eval("Enum.reduce(1..100_000_000, 0, &+/2)", max_reductions: 2_000_000)
  end

  for {name, code} <- [
        heap_bomb: "Enum.to_list(1..100_000_000)",
        list_duplicate: "List.duplicate(0, 1_000_000_000)",
        make_tuple: ":erlang.make_tuple(1_000_000_000, 0)",
        binary_copy: ":binary.copy(\"x\", 1_000_000_000)",
        string_duplicate: "String.duplicate(\"ab\", 500_000_000)",
        pad_leading: "String.pad_leading(\"\", 1_000_000_000)",
        bit_syntax_size: "n = 8_000_000_000; <<0::size(n)>>",
        doubling_binary: "Enum.reduce(1..40, \"x\", fn _, acc -> acc <> acc end)"
      ] do
    test "memory bomb refused: #{name}" do
      assert {:error, :memory_limit} = eval(unquote(code), max_binary: 8_000_000)
    end
  end

  test "a bignum bomb is refused by the heap limit" do
    assert {:error, :memory_limit} =
             eval("Enum.reduce(1..40, 3, fn _, acc -> acc * acc end)", max_heap_size: 200_000)
  end

  test "atom floods stop at max_atoms and the atom table barely grows" do
    # Load every module the floods use first, so only the floods can add atoms.
    {:error, :atom_limit} = eval("for i <- 1..3, do: String.to_atom(\"warm_\#{i}\")", max_atoms: 1)
    before = :erlang.system_info(:atom_count)

    for code <- [
          "for i <- 1..10_000, do: String.to_atom(\"flood_a_\#{i}\")",
          "for i <- 1..10_000, do: :\"flood_b_\#{i}\"",
          Enum.map_join(1..500, "; ", &":flood_c_#{&1}")
        ] do
      assert {:error, :atom_limit} = eval(code, max_atoms: 20)
    end

    assert :erlang.system_info(:atom_count) - before < 100
  end

  test "a spawn flood stops at max_processes and leaves no process behind" do
    before = length(Process.list())

    assert {:error, :process_limit} =
             eval("for _ <- 1..10_000, do: spawn(fn -> Process.sleep(:infinity) end)",
               policy: :processes,
               max_processes: 50
             )

    assert Seccomp.Test.Wait.eventually(fn -> length(Process.list()) <= before end)
  end

  test "a Task flood counts too" do
    assert {:error, :process_limit} =
             eval("for _ <- 1..10_000, do: Task.async(fn -> Process.sleep(:infinity) end)",
               policy: :processes,
               max_processes: 20
             )
  end

  test "a timeout kills the whole process tree the sandbox started" do
    code = """
    chain = fn _chain, 0 -> Process.sleep(:infinity)
               chain, n -> child = spawn(fn -> chain.(chain, n - 1) end)
                           send(test, {:spawned, child})
                           Process.sleep(:infinity)
            end
    spawn(fn -> chain.(chain, 5) end)
    Task.async(fn -> send(test, {:spawned, self()}); Process.sleep(:infinity) end)
    Process.sleep(:infinity)
    """

    tables = length(:ets.all())

    assert {:error, :timeout} =
             eval(code,
               policy: :processes,
               bindings: [test: self()],
               send_to: [self()],
               timeout: 300
             )

    pids = collect_spawned([])
    assert length(pids) == 6
    assert Seccomp.Test.Wait.eventually(fn -> Enum.all?(pids, &(not Process.alive?(&1))) end)
    assert length(:ets.all()) == tables
  end

  test "when the caller dies, the sandbox dies with it" do
    me = self()

    caller =
      spawn(fn ->
        eval("send(test, {:root, self()}); Process.sleep(:infinity)",
          policy: :processes,
          bindings: [test: me],
          send_to: [me],
          timeout: 60_000
        )
      end)

    assert_receive {:root, root}, 2000
    Process.exit(caller, :kill)
    assert Seccomp.Test.Wait.eventually(fn -> not Process.alive?(root) end)
  end

  test "host memory is back to normal after the bombs" do
    :erlang.garbage_collect()
    before = :erlang.memory(:total)

    for code <- ["Enum.to_list(1..50_000_000)", ":binary.copy(\"x\", 100_000_000)"] do
      {:error, :memory_limit} = eval(code)
    end

    :erlang.garbage_collect()
    assert Seccomp.Test.Wait.eventually(fn -> :erlang.memory(:total) - before < 50_000_000 end)
  end

  defp collect_spawned(acc) do
    receive do
      {:spawned, pid} -> collect_spawned([pid | acc])
    after
      200 -> acc
    end
  end
end
