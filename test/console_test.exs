defmodule Seccomp.ConsoleTest do
  # The restricted shell and the mix tasks do what their help says.
  use ExUnit.Case, async: true

  # Runs the shell on `input` as its group leader (binary mode, as under Mix).
  defp shell(input, opts \\ %{language: :elixir}) do
    {:ok, io} = StringIO.open(input, capture_prompt: true)

    task =
      Task.async(fn ->
        Process.group_leader(self(), io)
        :seccomp_shell.start(opts)
      end)

    assert Task.await(task, 50_000) == :ok
    {:ok, {remaining, output}} = StringIO.close(io)
    {remaining, output}
  end

  test "an empty line does nothing and q() quits, leaving the rest unread" do
    {remaining, output} = shell("x = 20\n\n   \nx * 2\nq()\n:after_quit\n")
    assert output =~ "40"
    refute output =~ "nil"
    assert remaining == ":after_quit\n"
    # the empty lines prompt again with the same number
    assert output =~ "seccomp(2)> seccomp(2)> seccomp(2)> 40"
  end

  test "q(). quits an Erlang shell, end of input quits too" do
    assert {"1.\n", _} = shell("q().\n1.\n", %{language: :erlang})
    {"", output} = shell("A = 1.\n", %{language: :erlang})
    assert output =~ "1"
  end

  test "lines are classified alike as charlists and binaries" do
    for line <- ["q()\n", ~c"q()\n", " q(). "], do: assert(:seccomp_shell.command(line) == :quit)
    for line <- ["\n", ~c"  \n"], do: assert(:seccomp_shell.command(line) == :empty)
    assert :seccomp_shell.command(:eof) == :quit
    assert :seccomp_shell.command("1 + 1\n") == {:eval, ~c"1 + 1"}
  end

  describe "mix seccomp.eval" do
    test "no code or an unknown flag prints the usage" do
      assert_raise Mix.Error, ~r/usage: mix seccomp.eval CODE/, fn ->
        Mix.Tasks.Seccomp.Eval.run([])
      end

      assert_raise Mix.Error, ~r/unknown or invalid option --frobnicate.*usage:/s, fn ->
        Mix.Tasks.Seccomp.Eval.run(["1 + 1", "--frobnicate"])
      end

      assert_raise Mix.Error, ~r/usage:/, fn -> Mix.Tasks.Seccomp.Eval.run(["1", "2"]) end
    end

    test "a bad profile names the profiles there are" do
      assert_raise Mix.Error, ~r/unknown profile "nope"; the profiles are: pure, processes/, fn ->
        Mix.Tasks.Seccomp.Eval.run(["1 + 1", "--profile", "nope"])
      end
    end

    test "code runs under the profile given" do
      output =
        ExUnit.CaptureIO.capture_io(fn ->
          Mix.Tasks.Seccomp.Eval.run(["Enum.sum(1..10)", "--profile", "processes"])
        end)

      assert output == "55\n"

      assert_raise Mix.Error, ~r/refused: .*seccomp_violation/, fn ->
        Mix.Tasks.Seccomp.Eval.run([~s{File.read!("/etc/passwd")}])
      end
    end
  end

  describe "mix seccomp.ps" do
    test "bad arguments print the usage" do
      assert_raise Mix.Error, ~r/usage: mix seccomp.ps/, fn ->
        Mix.Tasks.Seccomp.Ps.run(["--nod", "x"])
      end
    end

    # The task runs in its own Mix VM, as users run it, against a peer node.
    @tag timeout: 120_000
    test "--node lists the restricted processes of a running node" do
      cookie = "seccomp_ps_test_cookie"

      {:ok, peer, node} =
        :peer.start(%{
          name: :peer.random_name(:ps_target),
          connection: :standard_io,
          args:
            [~c"-setcookie", String.to_charlist(cookie)] ++
              Enum.flat_map(:code.get_path(), &[~c"-pa", &1])
        })

      try do
        {:ok, _} = :peer.call(peer, :application, :ensure_all_started, [:elixir])
        {:ok, _} = :peer.call(peer, :application, :ensure_all_started, [:beam_seccomp])

        restrict = """
        spawn(fn -> :ok = :seccomp.restrict(%{mode: :blacklist, rules: [:os]}); Process.sleep(:infinity) end)
        """

        {pid, _} = :peer.call(peer, Code, :eval_string, [restrict])

        {output, status} =
          System.cmd("mix", ["seccomp.ps", "--node", to_string(node), "--cookie", cookie],
            env: [{"MIX_ENV", "test"}],
            stderr_to_stdout: true
          )

        assert status == 0, output
        remote_pid = to_string(:peer.call(peer, :erlang, :pid_to_list, [pid]))
        assert output =~ ~r/^#{Regex.escape(remote_pid)} /m
        assert output =~ ~r/^1 restricted of \d+ processes$/m

        # (the peer would log the refused connection on our stdout)
        :ok = :peer.call(peer, :logger, :set_primary_config, [:level, :none])

        {output, status} =
          System.cmd("mix", ["seccomp.ps", "--node", to_string(node), "--cookie", "wrong"],
            env: [{"MIX_ENV", "test"}],
            stderr_to_stdout: true
          )

        assert status != 0
        assert output =~ "cannot connect to #{node}"
      after
        :peer.stop(peer)
      end
    end
  end
end
