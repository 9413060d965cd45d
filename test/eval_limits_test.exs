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

  test "an external term is decoded only if what it declares fits, in every mode" do
    # A compressed term (tag 80) declares its inflated size: a bomb of a few
    # bytes may declare gigabytes, which decoding would allocate at once.
    bomb = <<131, 80, 0x7FFFFFFF::32, 120, 156>>
    small = :erlang.term_to_binary(Enum.to_list(1..100), [:compressed])
    # Two words of heap per byte at most: 5 MB of external form is too much
    # for the default 48 MB copy bound, though within max_binary.
    wide = :erlang.term_to_binary(:binary.copy(<<1>>, 5_000_000) |> :erlang.binary_to_list())
    policy = [policy: %{mode: :blacklist, rules: []}]

    for mode <- [:eval, :pool, :caller] do
      run = fn bin ->
        code = ":erlang.binary_to_term(bin)"

        case mode do
          :eval ->
            eval(code, [bindings: [bin: bin]] ++ policy)

          _ ->
            {:ok, rule} = Seccomp.Eval.prepare(code, [bindings: [:bin]] ++ policy)
            result = Seccomp.Eval.run(rule, [bin: bin], mode: mode)
            Seccomp.Eval.release(rule)
            result
        end
      end

      assert {:error, :memory_limit} = run.(bomb), "#{mode}"
      assert {:error, :memory_limit} = run.(wide), "#{mode}"
      assert {:ok, list, _} = run.(small), "#{mode}"
      assert list == Enum.to_list(1..100)
    end
  end

  test "eval refuses source past max_source, as prepare does" do
    code = String.duplicate("1 + ", 50) <> "1"
    assert {:error, {:eval_limit, :size, 100}} = eval(code, max_source: 100)
    assert {:error, {:eval_limit, :size, 100}} = eval(String.to_charlist(code), max_source: 100)
    assert {:error, {:eval_limit, :size, 100}} = eval(Code.string_to_quoted!(code), max_source: 100)
    assert {:ok, 51, []} = eval(code, max_source: 1000)
    assert {:error, {:invalid_option, {:max_source, -1}}} = eval("1", max_source: -1)
  end

  test "one owner cannot take every prepared slot" do
    Application.put_env(:beam_seccomp, :max_prepared_per_owner, 3)
    on_exit(fn -> Application.delete_env(:beam_seccomp, :max_prepared_per_owner) end)

    held =
      for i <- 1..3 do
        assert {:ok, p} = Seccomp.Eval.prepare("#{i}", mode: :caller)
        p
      end

    assert {:error, {:prepare_limit, :owner, 3}} = Seccomp.Eval.prepare("4", mode: :caller)

    # Another process still prepares; a release frees a place for its owner.
    other = Task.async(fn -> Seccomp.Eval.prepare("5", mode: :caller) end) |> Task.await()
    assert {:ok, _} = other
    :ok = Seccomp.Eval.release(hd(held))
    assert {:ok, p} = Seccomp.Eval.prepare("6", mode: :caller)
    Enum.each([p | tl(held)], &Seccomp.Eval.release/1)
  end

  test "shared terms are measured flattened, within bounded work" do
    tower = Enum.reduce(1..40, {1, 1}, fn _, t -> {t, t} end)
    {us, over} = :timer.tc(fn -> :seccomp_size.cost(tower, 48_000_000, :term) end)
    assert over == :over
    assert us < 2_000_000
    # A tuple of three (4 words), two list cells (2 words each), a binary (2 words and 3 bytes).
    assert :seccomp_size.cost({1, [2, 3], "abc"}, 1000, :term) == 8 * 4 + 2 * 16 + (16 + 3)
    iodata = Enum.reduce(1..40, ["ab"], fn _, t -> [t, t] end)
    assert :seccomp_size.cost(iodata, 1_000_000, :iodata) == :over
    assert :seccomp_size.cost(["ab", ?c | "d"], 100, :iodata) == 2 + 1 + 1 + 1 + 1
    # Funs are measured by their environment.
    big = Enum.to_list(1..10_000)
    assert :seccomp_size.cost(fn -> big end, 1000, :term) == :over
  end

  defp collect_spawned(acc) do
    receive do
      {:spawned, pid} -> collect_spawned([pid | acc])
    after
      200 -> acc
    end
  end
end
