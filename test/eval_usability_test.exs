defmodule Seccomp.EvalUsabilityTest do
  # What users write must just work under `pure`, with the values plain evaluation
  # gives, whether evaluated or prepared and run in a pool or in the caller.
  use ExUnit.Case, async: true
  alias Seccomp.Test.UsabilityCorpus
  alias Seccomp.Test.Backends

  defp plain(:elixir, code), do: code |> Code.eval_string() |> elem(0)

  defp plain(:erlang, code) do
    {:ok, tokens, _} = :erl_scan.string(String.to_charlist(code))
    {:ok, exprs} = :erl_parse.parse_exprs(tokens)
    {:value, value, _} = :erl_eval.exprs(exprs, [])
    value
  end

  # Random and time-dependent values are compared by shape only.
  for backend <- Backends.all(),
      {language, corpus} <- [elixir: UsabilityCorpus.elixir(), erlang: UsabilityCorpus.erlang()],
      {code, index} <- Enum.with_index(corpus) do
    test "#{backend}: #{language} ##{index}: #{code}" do
      language = unquote(language)
      code = unquote(code)
      opts = %{language: language, policy: :pure, max_atoms: 10}

      assert {:ok, value, _bindings} = Backends.run(unquote(backend), code, opts)

      assert value == plain(language, code)
    end
  end

  test "the usability corpus is large enough" do
    assert length(UsabilityCorpus.elixir()) + length(UsabilityCorpus.erlang()) >= 150
  end

  test "bindings go in and come out, so a session can continue" do
    assert {:ok, 3, bindings} = Seccomp.Eval.eval("c = a + b", bindings: [a: 1, b: 2])
    assert bindings == [a: 1, b: 2, c: 3]
    assert {:ok, 30, _} = Seccomp.Eval.eval("c * 10", bindings: bindings)

    assert {:ok, 6, erl_bindings} =
             :seccomp_eval.eval("Z = X * Y.", %{bindings: [{:X, 2}, {:Y, 3}]})

    assert erl_bindings == [X: 2, Y: 3, Z: 6]
  end

  test "quoted Elixir is accepted" do
    assert {:ok, 4, _} = Seccomp.Eval.eval(quote(do: 2 + 2))
  end

  test "Erlang callers can evaluate Elixir" do
    assert {:ok, "AB", _} = :seccomp_eval.eval("String.upcase(\"ab\")", %{language: :elixir})
  end

  test "a profile can be extended and narrowed" do
    assert {:error, {:seccomp_violation, {:os, :getpid, 0}}} = Seccomp.Eval.eval(":os.getpid()")
    assert {:ok, pid, _} = Seccomp.Eval.eval(":os.getpid()", allow: [{:os, :getpid, 0}])
    assert pid == :os.getpid()

    assert {:error, {:seccomp_violation, {String, :upcase, 1}}} =
             Seccomp.Eval.eval("String.upcase(\"x\")", deny: [{String, :upcase, 1}])
  end

  test "output is captured, not printed" do
    assert {:ok, :ok, [], "hi\n"} =
             Seccomp.Eval.eval("IO.puts(\"hi\")", allow: [IO, :io], output: :capture)
  end

  test "errors are clear" do
    assert {:error, {:syntax_error, 1, msg}} = Seccomp.Eval.eval("1 +")
    assert msg =~ "syntax error"
    assert {:error, {:syntax_error, 1, _}} = :seccomp_eval.eval("1 + .", %{})

    assert {:error, {:exception, :error, %ArithmeticError{}, "** (ArithmeticError)" <> _}} =
             Seccomp.Eval.eval("1 / 0")

    assert {:error, {:exception, :error, :badarith, text}} = :seccomp_eval.eval("1 / 0.", %{})
    assert text =~ "arithmetic"
    assert {:error, {:compile_error, 1, msg}} = Seccomp.Eval.eval("undefined_var + 1")
    assert msg =~ "undefined"
    assert {:error, {:invalid_option, :colour}} = Seccomp.Eval.eval("1", colour: :red)
    assert {:error, {:unknown_profile, :nope}} = Seccomp.Eval.eval("1", policy: :nope)
    assert {:error, {:invalid_option, {:timeout, -1}}} = Seccomp.Eval.eval("1", timeout: -1)
  end

  test "the restricted shell keeps bindings from line to line and refuses escapes" do
    opts = %{language: :elixir, policy: :pure}
    {text, b1} = :seccomp_shell.eval_line("x = 40", [], opts)
    assert IO.iodata_to_binary(text) == "40"
    {text, b2} = :seccomp_shell.eval_line("x + 2", b1, opts)
    assert IO.iodata_to_binary(text) == "42"
    {text, b3} = :seccomp_shell.eval_line("File.rm(\"/tmp/x\")", b2, opts)
    assert IO.iodata_to_binary(text) =~ "refused"
    assert b3 == b2
  end
end
