defmodule Seccomp.SandboxMembershipTest do
  # Membership of a sandbox is given at birth: only the processes a sandbox
  # starts join it. A host process that calls a fun the sandbox returned or
  # sent is never enrolled, restricted, counted or killed (by the end of a
  # run, by a release, by the purge of the code); the sandbox's own
  # children (Task, Agent, spawn) still join and die with it.
  use ExUnit.Case, async: false
  @moduletag :capture_log
  alias Seccomp.Eval
  import Seccomp.Test.Wait, only: [eventually: 1]

  @sources %{
    elixir: %{ok: "fn -> 1 end", raises: "fn -> raise \"boom\" end"},
    erlang: %{ok: "fun() -> 1 end.", raises: "fun() -> erlang:error(boom) end."}
  }

  # What a sandbox could change in a process: its layers, heap limit,
  # dictionary, links and liveness.
  defp state(pid) do
    status = Seccomp.status(pid)
    info = Process.info(pid, [:max_heap_size, :dictionary, :links, :trap_exit])
    {status.mode, status.layers, status.no_spawn, info}
  end

  # Runs `fun` in a fresh host process, which then reports its own state
  # and stays alive until told to stop.
  defp in_host(fun) do
    test = self()

    host =
      spawn(fn ->
        before = state(self())
        result = fun.()
        send(test, {:host, self(), before, result, state(self())})
        receive do: (:stop -> :ok)
      end)

    assert_receive {:host, ^host, before, result, after_}, 10_000
    {host, before, result, after_}
  end

  defp call(f),
    do:
      (try do
         f.()
       catch
         k, e -> {:caught, k, e}
       end)

  defp prepare!(code, opts) do
    {:ok, prepared} = Eval.prepare(code, opts)
    prepared
  end

  defp fun_from(:eval, src, opts) do
    {:ok, f, _} = Eval.eval(src, opts)
    {f, fn -> :ok end}
  end

  defp fun_from(mode, src, opts) do
    rule = prepare!(src, opts)
    {:ok, f, _} = Eval.run(rule, [], mode: mode)
    {f, fn -> Eval.release(rule) end}
  end

  describe "a host process that calls the sandbox's funs" do
    for lang <- [:elixir, :erlang], policy <- [:pure, :processes] do
      test "is left as it was, #{lang}, #{policy}, eval, pool and caller modes" do
        lang = unquote(lang)
        opts = [language: lang, policy: unquote(policy)]

        for mode <- [:eval, :pool, :caller], kind <- [:ok, :raises] do
          src = @sources[lang][kind]

          {host, before, result, after_} =
            in_host(fn ->
              {f, release} = fun_from(mode, src, opts)
              first = call(f)
              # Another run of the same rule ends with a reset of its members.
              release.()
              {first, call(f)}
            end)

          {first, _after_release} = result

          # A fun of a sandbox runs in its members only, a caller-mode
          # fun within a run only.
          assert first == {:caught, :error, :outside_sandbox}, inspect({lang, mode, kind})

          assert before == after_, "#{inspect({lang, mode, kind})} changed the host"
          assert {:disabled, [], false, _} = after_
          Process.sleep(50)
          assert Process.alive?(host), "#{inspect({lang, mode, kind})} killed the host"
          send(host, :stop)
        end
      end
    end

    test "a server that keeps returned funs across runs and a release survives, unrestricted" do
      rule = prepare!(@sources.elixir.raises, [])
      {:ok, holder} = Agent.start(fn -> [] end)
      before = state(holder)

      for _ <- 1..3 do
        {:ok, f, _} = Eval.run(rule, [], mode: :pool)
        Agent.update(holder, &[f | &1])
      end

      # The server calls them (the exception and its stack stay in its heap).
      assert Agent.get(holder, fn fs -> Enum.map(fs, &call/1) end) ==
               List.duplicate({:caught, :error, :outside_sandbox}, 3)

      assert {:ok, _, _} = Eval.run(rule, [], mode: :pool)
      :ok = Eval.release(rule)
      assert eventually(fn -> :seccomp_prepared.in_use().draining == 0 end)
      assert Process.alive?(holder)
      assert state(holder) == before
      # After the purge a kept fun is gone: an error, in the server alone.
      assert [{:caught, :error, _} | _] = Agent.get(holder, fn fs -> Enum.map(fs, &call/1) end)
      assert Process.alive?(holder)
      Agent.stop(holder)
    end

    test "a caller-mode fun runs within a run only: after it, not even the rule's kill acts" do
      policy = Seccomp.Policy.new!(deny: [:os], default_action: :kill)
      rule = prepare!("fn -> :os.getpid() end", policy: policy)
      {:ok, f, _} = Eval.run(rule, [], mode: :caller)

      {host, before, result, after_} = in_host(fn -> for _ <- 1..20, do: call(f) end)

      assert Enum.uniq(result) == [{:caught, :error, :outside_sandbox}]
      assert before == after_
      assert Process.alive?(host)
      send(host, :stop)
      :ok = Eval.release(rule)
    end

    test "a caller-mode run neither reads nor changes the caller's dictionary" do
      :rand.seed(:exsss, {1, 2, 3})
      Process.put(:seccomp_membership_key, :host)
      before = Process.get()
      deny = [policy: [deny: [:os]]]

      for {code, opts} <- [
            {"Enum.random(1..1_000_000)", []},
            {":rand.seed(:exsss, 42); :rand.export_seed()", deny},
            {":rand.export_seed()", deny}
          ] do
        rule = prepare!(code, opts)
        assert {:ok, value, _} = Eval.run(rule, [], mode: :caller)
        # The host's seed is out of the run's sight.
        if code == ":rand.export_seed()", do: assert(value == :undefined)
        assert Process.get() == before, code
        :ok = Eval.release(rule)
      end
    end

    test "a caller-mode run that outgrows max_heap_size ends its caller, not the VM" do
      test = self()

      for {code, lang} <- [
            {"Enum.to_list(1..5_000_000)", :elixir},
            {~S|string:copies("abc", 5000000).|, :erlang},
            {"Enum.to_list(1..1000) |> length()", :elixir}
          ] do
        rule = prepare!(code, language: lang, max_heap_size: 200_000, max_binary: 100_000)

        caller =
          spawn(fn ->
            before = state(self())
            result = Eval.run(rule, [], mode: :caller)
            send(test, {:ran, result, before == state(self())})
          end)

        ref = Process.monitor(caller)

        receive do
          {:ran, result, same} ->
            assert {:ok, 1000, _} = result
            assert same, "the caller's heap limit or dictionary changed"

          {:DOWN, ^ref, _, _, why} ->
            assert why == :killed
            assert code != "Enum.to_list(1..1000) |> length()"
        after
          10_000 -> flunk("#{code}: no answer")
        end

        :ok = Eval.release(rule)
      end
    end

    test "a fun kept past a release never runs the code of a later rule" do
      # Funs called within a caller-mode run of another rule.
      apply = prepare!("f.()", bindings: [:f])
      old = prepare!("fn -> :old end", [])
      {:ok, f, _} = Eval.run(old, [], mode: :caller)
      assert {:ok, :old, _} = Eval.run(apply, [f: f], mode: :caller)
      :ok = Eval.release(old)
      assert eventually(fn -> :seccomp_prepared.in_use().draining == 0 end)
      new = prepare!("fn -> :new end", [])
      assert {:ok, g, _} = Eval.run(new, [], mode: :caller)
      assert {:ok, :new, _} = Eval.run(apply, [f: g], mode: :caller)
      assert {:error, {:exception, :error, _, _}} = Eval.run(apply, [f: f], mode: :caller)
      :ok = Eval.release(new)
      :ok = Eval.release(apply)
    end

    test "a fun the sandbox sends while it runs is refused, in the message and in the receiver" do
      test = self()

      host =
        spawn(fn ->
          Process.register(self(), :seccomp_membership_host)
          before = state(self())

          receive do
            {:fun, root, f} ->
              result = call(f)
              send(root, :go)
              send(test, {:host, result, before, state(self())})
          end

          receive do: (:stop -> :ok)
        end)

      code = """
      send(:seccomp_membership_host, {:fun, self(), fn -> raise "boom" end})
      receive do
        :go -> :done
      after
        2000 -> :late
      end
      """

      # A message to a host process carries no code.
      assert {:error, {:seccomp_violation, {:erlang, :send, 2}}} =
               Eval.eval(code, policy: :processes, send_to: [:seccomp_membership_host])

      refute_received {:host, _, _, _}

      # Handed over another way (a binding the host reads back), the fun
      # still runs nowhere but in the sandbox.
      code = """
      f = fn -> raise "boom" end
      :done
      """

      assert {:ok, :done, bindings} = Eval.eval(code, policy: :processes)
      send(host, {:fun, self(), Keyword.fetch!(bindings, :f)})
      assert_receive :go

      assert_receive {:host, {:caught, :error, :outside_sandbox}, before, after_}
      assert before == after_
      assert Process.alive?(host)
      send(host, :stop)
    end
  end

  describe "the sandbox's own processes" do
    # Each child makes a refused call: the run reports it only if the child
    # joined (a process outside gets `outside_sandbox` instead).
    @children %{
      task: "Task.async(fn -> File.read(\"/etc/hostname\") end) |> Task.await()",
      spawn: """
      parent = self()
      spawn(fn -> send(parent, {:r, (try do File.read("/etc/hostname") rescue e -> e end)}) end)
      receive do
        {:r, r} -> r
      end
      """,
      agent: """
      {:ok, a} = Agent.start(fn -> 0 end)
      Agent.get(a, fn _ -> File.read("/etc/hostname") end)
      """
    }

    for {kind, code} <- @children do
      test "#{kind} children join: their refused calls are the run's, in eval and pool" do
        code = unquote(code)

        assert {:error, {:seccomp_violation, {File, :read, 1}}} =
                 Eval.eval(code, policy: :processes)

        rule = prepare!(code, policy: :processes)

        for _ <- 1..3 do
          assert {:error, {:seccomp_violation, {File, :read, 1}}} = Eval.run(rule, [], mode: :pool)
        end

        :ok = Eval.release(rule)
      end
    end

    test "children of a run are restricted members and die with the run, and at release" do
      test = self()

      code = """
      {:ok, a} = Agent.start(fn -> 0 end)
      Agent.get(a, fn s -> s end)
      t = Task.async(fn -> receive do :never -> :ok end end)
      s = spawn(fn -> self(); receive do :never -> :ok end end)
      send(:seccomp_membership_watch, {:pids, [a, t.pid, s]})
      receive do
        :never -> :ok
      after
        300 -> :ok
      end
      """

      Process.register(self(), :seccomp_membership_watch)

      # eval: restricted while the sandbox runs, dead once it ended.
      task =
        Task.async(fn ->
          Eval.eval(code, policy: :processes, send_to: [:seccomp_membership_watch])
        end)

      assert_receive {:pids, pids}, 5000

      for pid <- pids do
        assert eventually(fn -> match?(%{mode: :filter}, Seccomp.status(pid)) end)
      end

      assert {:ok, :ok, _} = Task.await(task)
      assert eventually(fn -> not Enum.any?(pids, &Process.alive?/1) end)

      # pool: dead once the run ended; the release stops the runner too.
      rule = prepare!(code, policy: :processes, send_to: [:seccomp_membership_watch])
      assert {:ok, :ok, _} = Eval.run(rule, [], mode: :pool)
      assert_receive {:pids, pids}
      assert eventually(fn -> not Enum.any?(pids, &Process.alive?/1) end)
      :ok = Eval.release(rule)
      Process.unregister(:seccomp_membership_watch)
      assert Process.alive?(test)
    end
  end

  describe "processes a library function starts" do
    test "are the sandbox's: counted, and ended with the run" do
      before = length(Process.list())

      for mode <- [:eval, :pool] do
        assert {:error, :process_limit} =
                 Seccomp.Test.Backends.run(mode, "for _ <- 1..500, do: :gen_event.start()", %{
                   language: :elixir,
                   policy: %{mode: :blacklist, rules: [:os]}
                 })

        assert {:ok, :ok, _} =
                 Seccomp.Test.Backends.run(
                   mode,
                   "{:ok, p} = :gen_event.start(); :gen_event.notify(p, :x); :ok",
                   %{
                     language: :elixir,
                     policy: %{mode: :blacklist, rules: [:os]}
                   }
                 )
      end

      assert eventually(fn -> length(Process.list()) <= before end)
    end
  end

  describe "a pool run leaves nothing to the next run" do
    @deny [policy: [deny: [:os, :file, :code, :port, System, File, Port, Code]], pool_size: 1]

    test "tables and timers of a run end with it" do
      rule =
        prepare!(
          ~S"""
          case x do
            :leave ->
              t = :ets.new(:seccomp_membership_table, [:public])
              :ets.insert(t, {1, :binary.copy("a", 100_000)})
              :erlang.send_after(50, self(), :late)
              :timer.send_after(50, self(), :late)
              :ok

            :look ->
              receive do
                m -> m
              after
                200 -> :clean
              end
          end
          """,
          [bindings: [:x]] ++ @deny
        )

      tables = length(:ets.all())

      for _ <- 1..20 do
        assert {:ok, :ok, _} = Eval.run(rule, [x: :leave], mode: :pool)
        assert {:ok, :clean, _} = Eval.run(rule, [x: :look], mode: :pool)
      end

      assert eventually(fn -> length(:ets.all()) <= tables end)
      :ok = Eval.release(rule)
    end

    test "flags, priority and group leader a run sets are not the next run's" do
      rule =
        prepare!(
          ~S"""
          case x do
            :set ->
              Process.flag(:priority, :low)
              Process.flag(:trap_exit, false)
              Process.group_leader(self(), self())
              :ok

            :look ->
              {Process.flag(:priority, :normal), Process.flag(:trap_exit, true),
               Process.group_leader() != self()}
          end
          """,
          [bindings: [:x]] ++ @deny
        )

      assert {:ok, {:normal, true, true} = fresh, _} = Eval.run(rule, [x: :look], mode: :pool)

      for _ <- 1..5 do
        assert {:ok, :ok, _} = Eval.run(rule, [x: :set], mode: :pool)
        assert {:ok, ^fresh, _} = Eval.run(rule, [x: :look], mode: :pool)
      end

      # A crashing linked task ends the run with an error, not the runner,
      # whatever an earlier run did to the flag.
      crash =
        prepare!(
          ~S"""
          if flag do
            Process.flag(:trap_exit, false)
          else
            Task.async(fn -> raise "boom" end)
            Process.sleep(100)
            :survived
          end
          """,
          bindings: [:flag],
          policy: [deny: [:os]],
          pool_size: 1
        )

      assert {:ok, :survived, _} = Eval.run(crash, [flag: false], mode: :pool)
      assert {:ok, true, _} = Eval.run(crash, [flag: true], mode: :pool)
      assert {:ok, :survived, _} = Eval.run(crash, [flag: false], mode: :pool)
      :ok = Eval.release(rule)
      :ok = Eval.release(crash)
    end

    test "an idle runner keeps no garbage of its last run" do
      rules =
        for _ <- 1..10 do
          prepare!(
            "length(for i <- 1..3, do: byte_size(:binary.copy(<<i>>, 10_000_000)))",
            @deny
          )
        end

      before = :erlang.memory(:binary)
      for rule <- rules, do: assert({:ok, 3, _} = Eval.run(rule, [], mode: :pool))
      # Ten idle runners, each of which made 30 MB of binaries.
      assert eventually(fn -> :erlang.memory(:binary) < before + 20_000_000 end),
             "#{div(:erlang.memory(:binary) - before, 1_000_000)} MB kept"

      for rule <- rules, do: :ok = Eval.release(rule)
    end

    test "a run queued behind another caller's ends at its own deadline" do
      rule =
        prepare!("if slow, do: Process.sleep(3_000), else: :fast", [bindings: [:slow]] ++ @deny)

      slow = Task.async(fn -> Eval.run(rule, [slow: true], mode: :pool, timeout: 5_000) end)
      Process.sleep(100)

      {micros, result} =
        :timer.tc(fn -> Eval.run(rule, [slow: false], mode: :pool, timeout: 300) end)

      assert result == {:error, :timeout}
      # (Its deadline plus a 100 ms margin; it used to be 2 s past it.)
      assert micros < 1_500_000, "answered after #{div(micros, 1000)} ms"
      assert {:ok, :ok, _} = Task.await(slow, 10_000)
      :ok = Eval.release(rule)
    end

    test "a rule that does none of that keeps its warm runner" do
      rule = prepare!("self()", pool_size: 1)
      {:ok, runner, _} = Eval.run(rule, [], mode: :pool)
      assert {:ok, ^runner, _} = Eval.run(rule, [], mode: :pool)
      :ok = Eval.release(rule)
    end
  end
end
