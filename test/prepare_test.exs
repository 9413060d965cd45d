defmodule Seccomp.PrepareTest do
  # Prepared code: compiled once, run many times, in a warm pool or in the caller.
  use ExUnit.Case, async: false
  @moduletag :capture_log
  alias Seccomp.Eval
  import Seccomp.Test.Wait, only: [eventually: 1]

  defp prepare!(code, opts \\ []) do
    {:ok, prepared} = Eval.prepare(code, opts)
    on_exit(fn -> Eval.release(prepared) end)
    prepared
  end

  defp both(fun), do: for(mode <- [:pool, :caller], do: fun.(mode))

  describe "running" do
    test "bindings go in and come out, in both modes and both languages" do
      rule = prepare!("total = price * qty", bindings: [:price, :qty])

      both(fn mode ->
        assert {:ok, 12, [price: 3, qty: 4, total: 12]} =
                 Eval.run(rule, [price: 3, qty: 4], mode: mode)
      end)

      {:ok, erl} = :seccomp_eval.prepare("Z = X * Y, Z + 1.", %{})

      both(fn mode ->
        assert {:ok, 7, [X: 2, Y: 3, Z: 6]} = :seccomp_eval.run(erl, [X: 2, Y: 3], %{mode: mode})
      end)

      :ok = :seccomp_eval.release(erl)
    end

    test "one prepared value serves many runs with different bindings, optimised or not" do
      for optimize <- [false, true] do
        rule =
          prepare!("Enum.map(items, &(&1 * k)) |> Enum.sum()",
            bindings: [:items, :k],
            optimize: optimize
          )

        for k <- 1..200 do
          assert {:ok, value, _} = Eval.run(rule, items: Enum.to_list(1..10), k: k)
          assert value == 55 * k
        end
      end
    end

    test "a missing input is an exception, not a crash" do
      rule = prepare!("X + 1.", language: :erlang)

      both(fn mode ->
        assert {:error, {:exception, :error, {:unbound_var, :X}, _}} =
                 :seccomp_eval.run(rule, [], %{mode: mode})
      end)
    end

    test "errors are those of eval" do
      assert {:error, {:syntax_error, 1, _}} = Eval.prepare("1 +")
      assert {:error, {:compile_error, 1, msg}} = Eval.prepare("undefined_var + 1")
      assert msg =~ "undefined"
      assert {:error, {:invalid_option, :colour}} = Eval.prepare("1", colour: :red)
      assert {:error, {:invalid_option, {:mode, :fast}}} = Eval.prepare("1", mode: :fast)
      assert {:error, {:unknown_profile, :nope}} = Eval.prepare("1", policy: :nope)
      assert {:error, {:invalid_option, {:output, :capture}}} = Eval.prepare("1", output: :capture)
      one = prepare!("1", mode: :caller)
      assert {:error, {:invalid_option, :colour}} = Eval.run(one, [], colour: :red)
      assert {:error, {:invalid_option, {:timeout, -1}}} = Eval.run(one, [], timeout: -1)
      assert {:error, {:invalid_option, {:mode, :fast}}} = Eval.run(one, [], mode: :fast)
      assert {:error, {:invalid_option, {:bindings, :nope}}} = Eval.run(one, :nope)
      assert {:error, :no_pool} = Eval.run(one, [], mode: :pool)
      assert {:error, {:invalid_option, {:prepared, :junk}}} = Eval.run(:junk, [])
      assert {:error, {:invalid_option, {:prepared, :junk}}} = Eval.release(:junk)
      assert {:error, {:syntax_error, 1, _}} = Eval.prepare(<<255, 254>>)
      assert {:error, {:syntax_error, 1, _}} = :seccomp_eval.prepare(<<255>>, %{})
      assert {:error, {:syntax_error, 1, _}} = :seccomp_eval.eval([1, 2, :a], %{})
      rule = prepare!("1 / x", bindings: [:x])

      both(fn mode ->
        assert {:error, {:exception, :error, %ArithmeticError{}, _}} =
                 Eval.run(rule, [x: 0], mode: mode)
      end)
    end

    test "funs made by prepared code run only within a run, and keep checking their calls there" do
      rule = prepare!("fn m -> m.getpid() end", mode: :caller)
      assert {:ok, fun, _} = Eval.run(rule, [])
      assert_raise ErlangError, ~r/outside_sandbox/, fn -> fun.(:os) end
      apply = prepare!("f.(:os)", bindings: [:f], mode: :caller)
      assert {:error, {:seccomp_violation, {:os, :getpid, 0}}} = Eval.run(apply, f: fun)
    end
  end

  describe "refusals" do
    test "a violation the code catches still fails the run, in both modes" do
      rule = prepare!(~S|try do File.read!("/etc/hostname") rescue _ -> :ok catch _, _ -> :ok end|)

      both(fn mode ->
        assert {:error, {:seccomp_violation, {File, :read!, 1}}} = Eval.run(rule, [], mode: mode)
      end)

      # ...and the next run starts clean.
      ok = prepare!("1 + 1")
      assert {:ok, 2, _} = Eval.run(ok, [])
    end

    test "caller mode refuses what would change the caller's process" do
      for code <- [
            "Process.put(:k, 1)",
            ":erlang.put(:k, 1)",
            "Process.flag(:trap_exit, true)",
            "spawn(fn -> :ok end)",
            "send(self(), :hi)",
            "Process.exit(self(), :kill)"
          ] do
        rule = prepare!(code, mode: :caller, policy: :processes, allow: [Process])
        assert {:error, {:seccomp_violation, _}} = Eval.run(rule, []), code
      end

      rule = prepare!("receive do x -> x after 0 -> :none end", mode: :caller)
      assert {:error, {:unsafe_form, _, msg}} = Eval.run(rule, [])
      assert msg =~ "receive"
      assert Process.get(:k) == nil
      refute Process.flag(:trap_exit, false)
      refute_received :hi
    end

    test "prepared code cannot enter the handler or another slot with a forged context" do
      victim = prepare!("1")

      for code <- [
            ":seccomp_sandbox.call({:os, :getpid}, [], {:ctx, make_ref(), :caller, :none, :none, :none, 0, 0, 0, 0, []})",
            ":\"#{slot_name(victim)}\".run(0, %{}, nil)",
            "apply(:\"#{slot_name(victim)}\", :run, [0, %{}, nil])"
          ] do
        for mode <- [:pool, :caller] do
          rule = prepare!(code, mode: mode, policy: [mode: :blacklist, rules: [{:os, :cmd, :_}]])
          assert {:error, {:seccomp_violation, _}} = Eval.run(rule, []), code
        end
      end
    end

    test "receive in pool mode never takes another caller's request" do
      rule =
        prepare!("receive do msg -> msg after 50 -> :nothing end",
          policy: :processes,
          pool_size: 1
        )

      parent = self()

      tasks =
        for i <- 1..5 do
          Task.async(fn -> Eval.run(rule, secret: i) end)
        end

      for task <- tasks, do: assert({:ok, :nothing, _} = Task.await(task))
      refute_received _, "#{inspect(parent)} got a stray message"
    end

    test "a run cannot queue a forged request that would run without the caller's deadline" do
      {:ok, rule} =
        :seccomp_eval.prepare(
          """
          case First of
            true ->
              Forged = \#{'First' => false},
              self() ! {'$seccomp_run', make_ref(), self(), make_ref(), 4611686018427387903, Forged},
              self() ! {'$seccomp_run', self(), make_ref(), 4611686018427387903, Forged},
              sent;
            false ->
              Loop = fun L(N) -> L(N + 1) end,
              Loop(0)
          end.
          """,
          %{policy: :processes, allow: [{:erlang, :make_ref, 0}], pool_size: 1}
        )

      on_exit(fn -> :seccomp_eval.release(rule) end)
      assert {:ok, :sent, _} = :seccomp_eval.run(rule, %{First: true})
      # Had a lookalike run, it would hold the only runner far past this timeout.
      assert {:ok, :sent, _} = :seccomp_eval.run(rule, %{First: true}, %{timeout: 1000})
    end
  end

  describe "pool limits and isolation" do
    test "time, heap, reductions, processes and atoms are limited; the pool recovers" do
      cases = [
        {"Stream.iterate(0, &(&1 + 1)) |> Enum.reduce(0, &+/2)", [timeout: 200], :timeout},
        {"Enum.to_list(1..10_000_000)", [max_heap_size: 200_000], :memory_limit},
        {"Enum.reduce(1..100_000_000, 0, &+/2)", [max_reductions: 1_000_000], :reduction_limit},
        {"for _ <- 1..50, do: spawn(fn -> Process.sleep(:infinity) end)",
         [policy: :processes, max_processes: 5], :process_limit},
        {"for i <- 1..20, do: String.to_atom(\"seccomp_prep_atom_\#{i}\")", [max_atoms: 5],
         :atom_limit}
      ]

      for {code, opts, limit} <- cases do
        rule = prepare!(code, Keyword.put(opts, :pool_size, 1))
        assert {:error, ^limit} = Eval.run(rule, []), code
        # A fresh runner takes the next request.
        assert {:error, ^limit} = Eval.run(rule, []), code
      end
    end

    test "a limit a child of the run reaches ends the run at once" do
      rule =
        prepare!(
          """
          parent = self()
          spawn(fn ->
            for i <- 1..20, do: String.to_atom("seccomp_child_atom_\#{i}")
            send(parent, :done)
          end)
          receive do
            :done -> :finished
          after
            3000 -> :waited
          end
          """,
          policy: :processes,
          max_atoms: 5,
          pool_size: 1
        )

      assert {:error, :atom_limit} = Eval.run(rule, [])
      assert {:error, :atom_limit} = Eval.run(rule, [])
    end

    test "a run sees nothing another run left: dictionary, mailbox, processes, counters" do
      rule =
        prepare!(
          """
          before = {Process.get(:mark), Process.info(self(), :message_queue_len)}
          Process.put(:mark, :set)
          send(self(), :leftover)
          child = spawn(fn -> Process.sleep(:infinity) end)
          {before, child}
          """,
          policy: :processes,
          allow: [{Process, :get, 1}, {Process, :put, 2}, {Process, :info, 2}],
          pool_size: 1
        )

      assert {:ok, {{nil, {:message_queue_len, 0}}, child1}, _} = Eval.run(rule, [])
      assert {:ok, {{nil, {:message_queue_len, 0}}, child2}, _} = Eval.run(rule, [])
      assert child1 != child2
      assert eventually(fn -> not Process.alive?(child1) end)
      assert eventually(fn -> not Process.alive?(child2) end)
    end

    test "the pool carries the preparer's own restrictions" do
      parent = self()

      spawn(fn ->
        :ok = Seccomp.restrict(Seccomp.Policy.new!(mode: :blacklist, rules: [{String, :upcase, 1}]))
        {:ok, rule} = Eval.prepare("String.upcase(s)", bindings: [:s])
        send(parent, {:result, Eval.run(rule, s: "a")})
      end)

      assert_receive {:result, {:error, {:seccomp_violation, {String, :upcase, 1}}}}, 5000
    end
  end

  describe "lifetime" do
    test "release fails runs in flight cleanly and later runs say released" do
      rule = prepare!("Process.sleep(300); :done", allow: [{Process, :sleep, 1}], pool_size: 2)
      tasks = for _ <- 1..6, do: Task.async(fn -> Eval.run(rule, []) end)
      Process.sleep(50)
      :ok = Eval.release(rule)
      results = Enum.map(tasks, &Task.await/1)
      assert Enum.all?(results, &(&1 in [{:error, :released}, {:ok, :done, []}])), inspect(results)
      assert {:error, :released} in results

      both(fn mode -> assert {:error, :released} = Eval.run(rule, [], mode: mode) end)
      :ok = Eval.release(rule)
    end

    test "many processes run the same prepared value at once" do
      rule = prepare!("Enum.sum(list) * n", bindings: [:list, :n])

      results =
        1..200
        |> Task.async_stream(
          fn n ->
            {n, Eval.run(rule, [list: [1, 2, 3], n: n], mode: Enum.random([:pool, :caller]))}
          end,
          max_concurrency: 50
        )
        |> Enum.map(fn {:ok, r} -> r end)

      for {n, result} <- results, do: assert({:ok, value, _} = result) && assert(value == 6 * n)
    end

    test "the owner's death releases the code and its pool" do
      parent = self()

      owner =
        spawn(fn ->
          {:ok, rule} = Eval.prepare("1 + 1")
          send(parent, {:rule, rule})
          Process.sleep(:infinity)
        end)

      assert_receive {:rule, rule}
      assert {:ok, 2, _} = Eval.run(rule, [])
      Process.exit(owner, :kill)
      # The pool stops and the slot is freed in two steps: wait for both.
      assert eventually(fn ->
               Eval.run(rule, []) == {:error, :released} and
                 Eval.run(rule, [], mode: :caller) == {:error, :released}
             end)
    end

    test "a released slot is reused, and a stale value never runs the new code" do
      old = prepare!(":old")
      :ok = Eval.release(old)
      # Hold new values until one lands in the old slot (free slots are few).
      new =
        Enum.find_value(1..100, fn _ ->
          candidate = prepare!(":new", mode: :caller)
          slot_name(candidate) == slot_name(old) && candidate
        end)

      assert new, "the released slot was never reused"
      assert {:ok, :new, _} = Eval.run(new, [])
      both(fn mode -> assert {:error, :released} = Eval.run(old, [], mode: mode) end)
    end

    test "caps on count and size give clear errors" do
      assert {:error, {:prepare_limit, :size, 100}} =
               Eval.prepare(String.duplicate("1 + ", 50) <> "1", max_source: 100)

      # Values of dead owners from earlier tests may still be on their way
      # out, so fill the slots up rather than count on a fixed number.
      max = :seccomp_prepared.in_use().live + 2
      Application.put_env(:beam_seccomp, :max_prepared, max)
      on_exit(fn -> Application.delete_env(:beam_seccomp, :max_prepared) end)

      {refusal, [held | _]} =
        Enum.reduce_while(1..(max + 1), [], fn i, held ->
          case Eval.prepare("#{i}", mode: :caller) do
            {:ok, p} ->
              on_exit(fn -> Eval.release(p) end)
              {:cont, [p | held]}

            error ->
              {:halt, {error, held}}
          end
        end)

      assert {:error, {:prepare_limit, :count, ^max}} = refusal
      assert :seccomp_prepared.in_use().live <= max
      :ok = Eval.release(held)
      assert {:ok, _} = Eval.prepare("3", mode: :caller)
    end
  end

  defp slot_name(prepared), do: prepared |> elem(3) |> Atom.to_string()
end
