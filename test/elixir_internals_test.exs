defmodule Seccomp.ElixirInternalsTest do
  # The sandbox translates Elixir with Elixir's private functions. When a new
  # Elixir renames or re-arities one of them, this test names it, instead of
  # every evaluation failing with `undef`.
  use ExUnit.Case, async: true

  test "every private Elixir function the translation uses exists on this Elixir" do
    internals = :seccomp_elixir.internals()
    assert {:elixir_erl_var, :from_env, 2} in internals

    missing =
      for {m, f, a} = mfa <- internals,
          not (Code.ensure_loaded?(m) and function_exported?(m, f, a)),
          do: mfa

    assert missing == [], "Elixir #{System.version()} lacks #{inspect(missing)}"
  end

  test "bindings survive the round trip through the private binding functions" do
    assert {:ok, 3, [a: 1, b: 2, c: 3]} = Seccomp.Eval.eval("c = a + b", bindings: [a: 1, b: 2])
    {:ok, prepared} = Seccomp.Eval.prepare("c = a * b", bindings: [:a, :b])
    assert {:ok, 6, bindings} = Seccomp.Eval.run(prepared, a: 2, b: 3)
    assert bindings[:c] == 6
  end

  test "an undefined variable is a compile error with its line and name" do
    assert {:error, {:compile_error, 2, msg}} = Seccomp.Eval.eval("1\nundefined_var + 1")
    assert msg =~ "undefined_var"
  end

  test "the compiler's warnings about the user's code stay off the host's stderr" do
    stderr =
      ExUnit.CaptureIO.capture_io(:stderr, fn ->
        # an unused variable and a deprecated function
        assert {:ok, _, _} = Seccomp.Eval.eval("f = fn unused -> 1 end\nf.(2)")
        Seccomp.Eval.eval("Enum.chunk([1, 2], 1)")
        # deprecated syntax, which the tokenizer warns about
        assert {:ok, 3, _} = Seccomp.Eval.eval("length('abc')")
        assert {:error, {:compile_error, _, _}} = Seccomp.Eval.eval("y + 1")
      end)

    # (other test files compiling meanwhile may warn too: the user's code is "nofile")
    if Version.match?(System.version(), ">= 1.15.0"), do: refute(stderr =~ "nofile")
  end
end
