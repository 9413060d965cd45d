defmodule Seccomp.SandboxInertTest do
  # What leaves a sandbox is inert, and a denylist closes what compiled code
  # reaches. Inputs that halted the VM when this regressed (the host's
  # logger or error formatting running what the sandbox's data names, a
  # library call that stops the VM) run in a peer VM of their own, with the
  # logger and Elixir's translator on, as a host has them.
  use ExUnit.Case, async: false
  @moduletag :capture_log
  @moduletag timeout: 300_000

  @readme_denylist %{
    mode: :blacklist,
    rules: [:os, :file, File, System, Code, :code, Port, {:erlang, :halt, :_}]
  }

  defp forged(m, f, reason),
    do:
      ":erlang.raise(:error, #{reason}, [{:m, :f, 0, [error_info: %{module: #{m}, function: #{f}}]}])"

  # {label, code, language, options}: each would stop the peer VM or kill
  # its victim process if what leaves the sandbox were interpreted.
  defp vm_cases do
    [
      {:error_info_kernel_sup, forged(":sys", ":terminate", ":kernel_sup"), :elixir, []},
      {:error_info_victim, forged(":sys", ":terminate", ":inert_victim"), :elixir, []},
      {:forged_re_pattern, ~s|:re.run("x", {:re_pattern, 0, 0, 0, "ERCP"})|, :elixir, []},
      {:forged_re_pattern, ~S|re:run("x", {re_pattern, 0, 0, 0, <<"ERCP">>}).|, :erlang, []},
      {:child_error_info_victim,
       ~S|spawn(fun() -> erlang:raise(error, inert_victim, [{m, f, 0, [{error_info, #{module => sys, function => terminate}}]}]) end), timer:sleep(300), ok.|,
       :erlang, [policy: :processes]},
      {:child_error_info_kernel_sup,
       "spawn(fn -> #{forged(":sys", ":terminate", ":kernel_sup")} end); Process.sleep(300)",
       :elixir, [policy: :processes]},
      {:task_error_info_victim,
       "Task.start(fn -> #{forged(":sys", ":terminate", ":inert_victim")} end); Process.sleep(300)",
       :elixir, [policy: :processes]},
      {:init_stop, ":init.stop()", :elixir, [policy: @readme_denylist]},
      {:init_stop, "init:stop().", :erlang, [policy: @readme_denylist]}
    ]
  end

  # A forged compiled pattern makes `re` fail in a way no catch sees: the
  # process that runs it dies (the sandbox's root or runner; in caller mode,
  # the caller).
  defp modes(:forged_re_pattern), do: [:eval, :pool]
  defp modes(_label), do: [:eval, :pool, :caller]

  setup_all do
    peer = Seccomp.Test.PeerVM.start([:elixir, :logger, :beam_seccomp])
    %{peer: peer}
  end

  defp victim(peer), do: Seccomp.Test.PeerVM.victim(peer, :inert_victim)

  defp run(peer, :eval, code, lang, opts),
    do: :peer.call(peer, :seccomp_eval, :eval, [code, [language: lang] ++ opts], 120_000)

  defp run(peer, mode, code, lang, opts) do
    case :peer.call(
           peer,
           :seccomp_eval,
           :prepare,
           [code, [language: lang, mode: mode] ++ opts],
           120_000
         ) do
      {:ok, p} -> :peer.call(peer, :seccomp_eval, :run, [p, []], 120_000)
      error -> error
    end
  end

  test "what leaves the sandbox is inert: the VM, its logger and its processes survive", %{
    peer: peer
  } do
    for {label, code, lang, opts} <- vm_cases(), mode <- modes(label) do
      victim = victim(peer)
      result = run(peer, mode, code, lang, opts)
      Process.sleep(400)
      where = "#{label} (#{lang}, #{mode})"

      assert match?({:error, _}, result) or match?({:ok, _, _}, result),
             "#{where}: #{inspect(result)}"

      assert :peer.call(peer, :erlang, :whereis, [:logger]) != :undefined, "#{where}: logger down"

      assert :peer.call(peer, :erlang, :whereis, [:kernel_sup]) != :undefined,
             "#{where}: kernel down"

      assert :peer.call(peer, :erlang, :is_process_alive, [victim]), "#{where}: victim killed"
    end
  end

  test "caller mode never raises the sandbox's data into the caller" do
    code = forged(":persistent_term", ":get", "{:inert_test, :secret}")
    :persistent_term.put({:inert_test, :secret}, "s3cr3t")
    {:ok, p} = :seccomp_eval.prepare(code, language: :elixir, mode: :caller)

    try do
      assert {:error, {:exception, :error, %ErlangError{original: {:inert_test, :secret}}, text}} =
               :seccomp_eval.run(p, [])

      refute text =~ "s3cr3t"
    after
      :seccomp_eval.release(p)
      :persistent_term.erase({:inert_test, :secret})
    end
  end

  test "exceptions keep their stack frames, without arguments or error_info" do
    assert {:error,
            {:exception, :error, %ErlangError{original: :boom},
             "** (ErlangError) Erlang error: :boom"}} =
             :seccomp_eval.eval(forged(":os", ":getenv", ":boom"), language: :elixir)

    stack =
      :seccomp_inert.stack([{:m, :f, [1, 2], [file: ~c"x.ex", line: 3, error_info: %{}]}, :junk])

    assert stack == [{:m, :f, 2, [file: ~c"x.ex", line: 3]}]
  end

  describe "pool isolation" do
    @deny_no_process %{mode: :blacklist, rules: [:os, :file, File, System, Code, :code]}

    test "a run sees neither other callers' queued requests nor its keeper" do
      for probe <- [
            "Process.info(self(), :messages)",
            "Process.info(self(), :links)",
            "Process.info(self(), :dictionary)",
            "Process.info(self(), :monitored_by)",
            ":erlang.process_info(self(), :parent)",
            "receive do m -> m after 0 -> :none end"
          ] do
        code = "if spy == 1, do: (Process.sleep(300); #{probe}), else: {:paid, card}"

        {:ok, rule} =
          :seccomp_eval.prepare(code,
            language: :elixir,
            policy: @deny_no_process,
            bindings: [:spy, :card],
            pool_size: 1
          )

        victim =
          Task.async(fn ->
            Process.sleep(50)
            :seccomp_eval.run(rule, spy: 0, card: "4111 victim secret")
          end)

        seen = :seccomp_eval.run(rule, spy: 1, card: nil)
        assert {:ok, {:paid, "4111 victim secret"}, _} = Task.await(victim)
        refute inspect(seen, limit: :infinity) =~ "victim secret", "#{probe}: #{inspect(seen)}"
        refute inspect(seen, limit: :infinity) =~ "seccomp_run", "#{probe}: #{inspect(seen)}"
        :ok = :seccomp_eval.release(rule)
      end
    end
  end

  describe "denylist closure" do
    test "every function that reaches a denial or a capability is refused by the policy" do
      {:ok, policy} = :seccomp_policy.new(@readme_denylist)
      extended = :seccomp_denylist.extend(policy)
      native = :seccomp_policy.native(extended)
      closure = :seccomp_denylist.closure(:seccomp_policy.spec(policy))

      # The red team's ways around the README denylist are in the set.
      for mfa <- [
            {:peer, :start, 1},
            {:zip, :zip, 3},
            {:zip, :unzip, 2},
            {:zip, :create, 2},
            {:filelib, :ensure_dir, 1},
            {:logger, :add_handler, 3},
            {:filename, :basedir, 2},
            {:init, :get_arguments, 0},
            {:init, :stop, 0}
          ] do
        assert mfa in closure, "#{inspect(mfa)} not derived"
      end

      assert length(closure) > 1000

      for {m, f, a} <- closure do
        assert {:deny, _} = :seccomp_nif.check_with(native, m, f, a), "#{m}:#{f}/#{a} allowed"
      end

      # What reaches nothing of the kind stays allowed.
      for {m, f, a} <- [
            {Enum, :map, 2},
            {String, :split, 2},
            {Kernel, :inspect, 1},
            {:lists, :sort, 1}
          ] do
        refute {m, f, a} in closure
        assert :allow = :seccomp_nif.check_with(native, m, f, a)
      end

      # Modules outside the analysed applications are refused unless named.
      assert {:deny, _} = :seccomp_nif.check_with(native, :seccomp_eval, :eval, 2)
    end

    test "only calls that can carry a capability put a function in the closure" do
      {:ok, policy} = :seccomp_policy.new(@readme_denylist)
      native = :seccomp_policy.native(:seccomp_denylist.extend(policy))
      closure = :seccomp_denylist.closure(:seccomp_policy.spec(policy))
      # Protocol dispatch, data functions of a denied module
      # (`System.convert_time_unit/3`), reads of the clock and of
      # configuration, crash reports carry none: nothing the profiles run is
      # in the closure (macros and compiler hooks such as
      # `Regex.__escape__/1` aside: they run at expansion, which is checked;
      # the hook reads a field with `x.field`, which Elixir 1.20 compiles to
      # a call by computed name).
      for name <- [:pure, :processes] do
        in_closure = Seccomp.Test.Profiles.named(closure, name)
        assert in_closure == [], "#{name}: #{inspect(in_closure)}"
      end

      for code <- [
            "Enum.map([1, 2], &(&1 * 2))",
            "Enum.group_by([1, 2], &rem(&1, 2))",
            "Date.utc_today()",
            "DateTime.utc_now()",
            "DateTime.add(DateTime.utc_now(), 1)",
            "Calendar.strftime(~D[2024-01-02], \"%Y\")"
          ],
          mode <- [:eval, :caller] do
        result =
          case mode do
            :eval ->
              :seccomp_eval.eval(code, language: :elixir, policy: @readme_denylist)

            :caller ->
              {:ok, p} =
                :seccomp_eval.prepare(code, language: :elixir, policy: @readme_denylist, mode: mode)

              r = :seccomp_eval.run(p, [])
              :seccomp_eval.release(p)
              r
          end

        assert {:ok, _, _} = result, "#{mode}: #{code}: #{inspect(result)}"
      end

      # A denied function is still refused, called or reached with an effect.
      assert {:deny, _} = :seccomp_nif.check_with(native, System, :convert_time_unit, 3)

      for mfa <- [{System, :get_env, 1}, {System, :cmd, 2}, {:os, :getenv, 1}, {Path, :expand, 1}] do
        assert mfa in closure, "#{inspect(mfa)} not derived"
      end
    end

    test "an exact allow rule opens a derived function again" do
      allow = %{match: {:filename, :basedir, 2}, action: :allow}

      {:ok, policy} =
        :seccomp_policy.new(%{@readme_denylist | rules: @readme_denylist.rules ++ [allow]})

      native = :seccomp_policy.native(:seccomp_denylist.extend(policy))
      assert :allow = :seccomp_nif.check_with(native, :filename, :basedir, 2)
      assert {:deny, _} = :seccomp_nif.check_with(native, :filelib, :ensure_dir, 1)
    end

    test "the red team's inputs are refused in every mode, with no side effect" do
      path = "/tmp/seccomp_inert_probe"

      for code <- [
            ":peer.start(%{exec: {'/bin/sh', ['-c', 'touch #{path}']}, connection: :standard_io, wait_boot: 500})",
            ":zip.create('#{path}', [{'a', \"x\"}])",
            ":filelib.ensure_dir('#{path}/x')",
            ":logger.add_handler(:inert_probe, :logger_std_h, %{config: %{file: '#{path}'}})",
            ":supervisor.start_child(:kernel_sup, %{id: :inert_probe, start: {:os, :cmd, ['touch #{path}']}})"
          ],
          mode <- [:eval, :pool, :caller] do
        File.rm_rf!(path)

        result =
          case mode do
            :eval ->
              :seccomp_eval.eval(code, language: :elixir, policy: @readme_denylist)

            _ ->
              {:ok, p} =
                :seccomp_eval.prepare(code, language: :elixir, policy: @readme_denylist, mode: mode)

              r = :seccomp_eval.run(p, [])
              :seccomp_eval.release(p)
              r
          end

        assert {:error, {:seccomp_violation, _}} = result, "#{mode}: #{code}: #{inspect(result)}"
        refute File.exists?(path), "#{mode}: #{code}"
      end
    end

    test "a sandbox may still ask its own supervisor to start a child" do
      code = """
      {:ok, sup} = Supervisor.start_link([], strategy: :one_for_one)
      {:ok, pid} = Supervisor.start_child(sup, %{id: :w, start: {Agent, :start_link, [fn -> 41 end]}})
      Agent.get(pid, &(&1 + 1))
      """

      assert {:ok, 42, _} =
               :seccomp_eval.eval(code,
                 language: :elixir,
                 policy: %{mode: :blacklist, rules: [:os]}
               )
    end
  end
end
