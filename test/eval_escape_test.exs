defmodule Seccomp.EvalEscapeTest do
  # Every attempt must be refused AND leave no trace (see Sentinels), whether
  # the code is evaluated or prepared and run in a pool or in the caller.
  use ExUnit.Case, async: false
  @moduletag :capture_log
  alias Seccomp.Test.Sentinels

  alias Seccomp.Test.EscapeAttempts
  alias Seccomp.Test.Backends

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

  defp attempt(backend, language, code, profile, canary) do
    result =
      Backends.run(backend, code, %{
        language: language,
        policy: if(profile == :denylist, do: EscapeAttempts.denylist(), else: profile),
        bindings: if(language == :elixir, do: [canary: canary], else: [{:Canary, canary}]),
        max_atoms: 50
      })

    changes = Sentinels.changes()
    Sentinels.reset()
    {result, changes}
  end

  for backend <- Backends.all(),
      {language, attempts} <- [elixir: EscapeAttempts.elixir(), erlang: EscapeAttempts.erlang()],
      {name, code, allowlist} <- attempts,
      profile <- [allowlist, :denylist],
      profile == allowlist or EscapeAttempts.denylist_applies?(name) do
    test "#{backend}: #{language} escape refused: #{name} (#{profile})", %{canary: canary} do
      code = unquote(code)

      {result, changes} =
        attempt(unquote(backend), unquote(language), code, unquote(profile), canary)

      assert refusal?(result), "not refused: #{inspect(result)}\n  code: #{code}"
      assert changes == [], "side effects #{inspect(changes)} from #{code}"
    end
  end

  # Formatting what leaves the sandbox runs none of its data: any outcome
  # but a raise into the caller, and nothing changed.
  for backend <- Backends.all(),
      {language, attempts} <- [
        elixir: EscapeAttempts.elixir_inert(),
        erlang: EscapeAttempts.erlang_inert()
      ],
      {name, code, allowlist} <- attempts,
      profile <- [allowlist, :denylist] do
    test "#{backend}: #{language} inert: #{name} (#{profile})", %{canary: canary} do
      code = unquote(code)

      {result, changes} =
        attempt(unquote(backend), unquote(language), code, unquote(profile), canary)

      assert match?({:ok, _, _}, result) or match?({:error, _}, result),
             "unexpected: #{inspect(result)}\n  code: #{code}"

      assert changes == [], "side effects #{inspect(changes)} from #{code}"
    end
  end

  test "the escape suite is large enough" do
    count =
      __MODULE__.__info__(:functions)
      |> Enum.count(fn {name, _} -> String.contains?(Atom.to_string(name), "escape refused") end)

    assert count >= 2 * 150 * length(Backends.all())
  end
end
