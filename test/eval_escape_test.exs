defmodule Seccomp.EvalEscapeTest do
  # Every attempt must be refused AND leave no trace (see Sentinels).
  use ExUnit.Case, async: false
  @moduletag :capture_log
  alias Seccomp.Test.Sentinels

  alias Seccomp.Test.EscapeAttempts

  setup_all do
    canary = Sentinels.start_canary()
    Sentinels.reset()
    on_exit(&Sentinels.reset/0)
    %{canary: canary}
  end

  defp refusal?({:error, {:seccomp_violation, {m, f, a}}})
       when is_atom(m) and is_atom(f) and is_integer(a),
       do: true

  defp refusal?({:error, {:unsafe_form, _, _}}), do: true

  defp refusal?({:error, limit}) when limit in [:atom_limit, :memory_limit, :process_limit],
    do: true

  # Refused before expansion because the call needs a module the sandbox cannot reach.
  defp refusal?({:error, {:compile_error, _, msg}}), do: msg =~ ~r/undefined|not available|record/
  defp refusal?(_), do: false

  defp attempt(language, code, profile, canary) do
    result =
      :seccomp_eval.eval(code, %{
        language: language,
        policy: profile,
        bindings: if(language == :elixir, do: [canary: canary], else: [{:Canary, canary}]),
        max_atoms: 50
      })

    changes = Sentinels.changes()
    Sentinels.reset()
    {result, changes}
  end

  for {language, attempts} <- [elixir: EscapeAttempts.elixir(), erlang: EscapeAttempts.erlang()],
      {name, code, profile} <- attempts do
    test "#{language} escape refused: #{name} (#{profile})", %{canary: canary} do
      code = unquote(code)
      {result, changes} = attempt(unquote(language), code, unquote(profile), canary)
      assert refusal?(result), "not refused: #{inspect(result)}\n  code: #{code}"
      assert changes == [], "side effects #{inspect(changes)} from #{code}"
    end
  end

  test "the escape suite is large enough" do
    count =
      __MODULE__.__info__(:functions)
      |> Enum.count(fn {name, _} -> String.contains?(Atom.to_string(name), "escape refused") end)

    assert count >= 150
  end
end
