defmodule Seccomp.ApplyDataTest do
  # Library functions that run what their data names (an {M, F, A}, a module
  # used as a callback or a struct, a process to message) are derived from
  # the installed OTP and Elixir with xref, and each must be mediated by the
  # handler (its arguments checked, or its own special handling) or refused:
  # never called directly on the sandbox's behalf.
  use ExUnit.Case, async: false

  # What running data means: applying it, starting or messaging processes,
  # opening ports, calling a module or function held in a variable. (xref
  # writes `Mod:f(...)` as '$M_EXPR':f and `m:Fun(...)` as m:'$F_EXPR'; a
  # call of a fun value, '$M_EXPR':'$F_EXPR', is left out: every fun that
  # sandboxed code holds checks its own calls.)
  @sinks "(erlang:apply/2 + erlang:apply/3 + erlang:spawn/_ + erlang:spawn_link/_ + " <>
           "erlang:spawn_monitor/_ + erlang:spawn_opt/_ + erlang:spawn_request/_ + " <>
           "erlang:send/_ + erlang:'!'/2 + erlang:open_port/2 + " <>
           "('$M_EXPR':_/_ - '$M_EXPR':'$F_EXPR'/_) + (_:'$F_EXPR'/_ - '$M_EXPR':'$F_EXPR'/_))"

  setup_all do
    {:ok, xref} = :xref.start(xref_mode: :functions)

    try do
      :xref.set_default(xref, warnings: false, verbose: false)
      elixir = :filename.dirname(:code.which(Enum))

      for dir <- [ebin(:stdlib), ebin(:kernel), elixir] do
        {:ok, _} = :xref.add_directory(xref, dir)
      end

      {:ok, reach} = :xref.q(xref, ~c"X * domain ((closure E) || #{@sinks})")
      # The sinks themselves, from what the running VM exports.
      sinks =
        for {f, a} <- :erlang.module_info(:exports),
            f in [:apply, :send, :!, :open_port] or
              String.starts_with?(Atom.to_string(f), "spawn"),
            do: {:erlang, f, a}

      %{applies_data: Enum.uniq(reach ++ sinks)}
    after
      :xref.stop(xref)
    end
  end

  defp ebin(app), do: to_charlist(Path.join(:code.lib_dir(app), "ebin"))

  test "the derivation finds what it must (else this suite would check nothing)", ctx do
    for mfa <- [
          {Agent, :get, 4},
          {Enum, :sort, 2},
          {Date, :to_string, 1},
          {Exception, :message, 1},
          {:timer, :apply_after, 4},
          {:erlang, :spawn_request, 3}
        ],
        function_exported?(elem(mfa, 0), elem(mfa, 1), elem(mfa, 2)) do
      assert mfa in ctx.applies_data, "#{inspect(mfa)} not derived"
    end

    assert length(ctx.applies_data) > 1000
  end

  test "no function that can apply data is called directly by prepared code or the handler",
       ctx do
    direct =
      for {m, f, a} <- ctx.applies_data, :seccomp_sandbox_calls.direct(m, f, a), do: {m, f, a}

    assert direct == [], "called without mediation: #{inspect(direct)}"
  end

  # Mediation, not refusal, for what the policy allows.
  for backend <- [:eval, :pool] do
    test "#{backend}: allowed functions named as data still run" do
      for {code, value} <- [
            {"{:ok, a} = Agent.start(fn -> [1, 2] end); Agent.get(a, Enum, :count, [])", 2},
            {"{:ok, a} = Agent.start(fn -> 1 end); Agent.update(a, Kernel, :+, [2]); Agent.get(a, & &1)",
             3},
            {"Enum.sort([~D[2024-03-01], ~D[2024-01-01]], Date) |> hd() |> Date.to_string()",
             "2024-01-01"},
            {"Task.async(fn -> 5 end) |> Task.await()", 5}
          ] do
        assert {:ok, ^value, _} =
                 Seccomp.Test.Backends.run(unquote(backend), code, %{
                   language: :elixir,
                   policy: :processes
                 })
      end
    end
  end
end
