defmodule Seccomp.EvalOutputTest do
  # Printing from sandboxed Elixir code reaches the sandbox's own output
  # capture and nothing else: no other device, not the host's console or
  # standard error, nothing in caller mode.
  use ExUnit.Case, async: false
  import ExUnit.CaptureIO
  alias Seccomp.Eval

  @denylist [policy: %{mode: :blacklist, rules: [:os, :file, File, System, Code, :code]}]

  test "printing is captured in both profiles, with the value unchanged" do
    for profile <- [:pure, :processes],
        {code, value, text} <- [
          {~s|IO.puts("hi")|, :ok, "hi\n"},
          {~s|IO.puts(:stdio, ["a", ?b])|, :ok, "ab\n"},
          {~s|IO.write(42)|, :ok, "42"},
          {~s|IO.inspect(%{a: [1, 2]})|, %{a: [1, 2]}, "%{a: [1, 2]}\n"},
          {~s|IO.inspect([1, 2, 3], label: "xs", limit: 2)|, [1, 2, 3], "xs: [1, 2, ...]\n"},
          {~s|IO.inspect(:stdio, 7, [])|, 7, "7\n"},
          {~s|:io.format("~p-~s~n", [1, "x"])|, :ok, "1-x\n"},
          {~s|Enum.each(1..3, &IO.write/1)|, :ok, "123"}
        ] do
      assert {:ok, ^value, [], ^text} = Eval.eval(code, policy: profile, output: :capture),
             "#{profile}: #{code}"
    end
  end

  test "by default the result keeps its shape and the host sees nothing" do
    host =
      capture_io(fn ->
        assert capture_io(:stderr, fn -> assert {:ok, 5, []} = Eval.eval("IO.inspect(5)") end) ==
                 ""
      end)

    assert host == ""
  end

  test "no other device is reachable, whatever the policy" do
    for opts <- [[], [policy: :processes], @denylist],
        code <- [
          ~s|IO.puts(:stderr, "x")|,
          ~s|IO.write(:standard_error, "x")|,
          ~s|IO.inspect(:user, 1, [])|,
          ~s|:io.format(:standard_error, "x", [])|,
          ~s|:io.put_chars(:user, "x")|,
          ~s|:io.request(:standard_error, {:put_chars, :unicode, "x"})|,
          ~s|IO.binwrite("x")|,
          ~s|IO.gets("> ")|,
          ~s|IO.read(:line)|,
          ~s|IO.stream()|,
          ~s|:io.get_line(~c"> ")|,
          ~s|:erlang.display("x")|
        ] do
      out =
        capture_io(:stderr, fn ->
          assert {:error, {:seccomp_violation, {m, _, _}}} = Eval.eval(code, opts),
                 "#{inspect(opts)}: #{code}"

          assert m in [IO, :io, :erlang]
        end)

      assert out == ""
    end
  end

  test "a pid is no device, not even the sandbox's own process" do
    code = ~s|pid = spawn(fn -> receive do _ -> :ok end end); IO.puts(pid, "x")|

    assert {:error, {:seccomp_violation, {IO, :puts, 2}}} =
             Eval.eval(code, policy: :processes, output: :capture)
  end

  test "prepared code prints nowhere, in a pool or in the caller" do
    for mode <- [:pool, :caller], policy <- [[], @denylist] do
      {:ok, rule} =
        Eval.prepare(~s|IO.puts("x"); IO.inspect(n * 2)|, [bindings: [:n], mode: mode] ++ policy)

      out = capture_io(fn -> send(self(), {:result, Eval.run(rule, [n: 21], mode: mode)}) end)
      assert_received {:result, result}
      assert out == "", "#{mode} #{inspect(policy)}"

      # A denylist's derived rules may refuse the printers themselves.
      if policy == [],
        do: assert({:ok, 42, [n: 21]} = result),
        else:
          assert(match?({:ok, 42, _}, result) or match?({:error, {:seccomp_violation, _}}, result))

      Eval.release(rule)
    end
  end
end
