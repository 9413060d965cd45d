defmodule Seccomp.ElixirHelpersTest do
  # Newer Elixir compiles some user code to calls of its own runtime helpers
  # (`m.f` to `elixir_erl_pass:no_parens_remote/2` since 1.17), which run code
  # themselves. The helpers the running Elixir emits are derived by compiling
  # a corpus of every kind of expression; each must be carried out by the
  # handler, and any other call into the compiler's modules is refused.
  use ExUnit.Case, async: false
  @moduletag :capture_log
  alias Seccomp.Test.Backends

  @corpus ~S'''
    a = map.field
    b = m.fun
    c = m2.fun()
    d = "#{x} and #{a}"
    e = for i <- list, i > 1, into: %{}, do: {i, i}
    f = for <<c <- s>>, reduce: 0, do: (acc -> acc + c)
    g = with {:ok, v} <- x, do: v, else: (_ -> nil)
    h = try do x rescue e in ArgumentError -> e catch :exit, r -> r after :ok end
    i = receive do ^x -> 1 after 0 -> 2 end
    j = {x..a//2, ~r/ab+/, ~w(a b)a, ~D[2020-01-01], ~U[2020-01-01 00:00:00Z]}
    k = {%{map | field: 1}, put_in(map[:a][:b], 1), get_in(map, [:a, :b]), update_in(map.a, & &1)}
    l = {list |> Enum.map(&(&1 + 1)), &Enum.map/2, &m.fun/1, <<x::binary-size(4), a::16>>}
    n = {if(x, do: 1, else: 2), cond(do: (x -> 1; true -> 2)), unless(x, do: 3)}
    o = case x do {:a, _} = z when is_tuple(z) -> z; _ -> fn y when y > 0 -> y; _ -> 0 end end
    p = {x in [1, 2], is_struct(x), is_exception(x), is_map_key(map, :a), x.y.z, x[:a], map.a.b}
    q = {-x, !x, x || a, x && a, x <> "a", to_string(x), inspect(x), then(x, & &1), binding()}
    r = {%URI{}, %URI{map | host: "x"}, %{__struct__: URI}, Map.get(map, :a, 1), __ENV__.line}
    t = raise ArgumentError, "x"
    {a, b, c, d, e, f, g, h, i, j, k, l, n, o, p, q, r, t}
  '''

  # Remote calls in the Erlang code the running Elixir makes of the corpus,
  # translated as the sandbox translates user code.
  defp emitted_calls do
    bindings = [m: :m, m2: :m2, map: %{}, x: 1, list: [], s: ""]
    quoted = Code.string_to_quoted!(@corpus)
    {:ok, exprs, _, _, _} = :seccomp_elixir.to_erl(quoted, bindings)
    exprs |> remote_calls() |> Enum.uniq()
  end

  defp remote_calls({:call, _, {:remote, _, {:atom, _, m}, {:atom, _, f}}, args} = t),
    do: [{m, f, length(args)} | remote_calls(Tuple.to_list(t))]

  defp remote_calls(t) when is_tuple(t), do: remote_calls(Tuple.to_list(t))
  defp remote_calls(l) when is_list(l), do: Enum.flat_map(l, &remote_calls/1)
  defp remote_calls(_), do: []

  test "every compiler helper the running Elixir emits is carried out by the handler" do
    calls = emitted_calls()
    assert {:erlang, :error, 1} in calls or {:erlang, :error, 2} in calls

    helpers = for {m, _, _} = mfa <- calls, :seccomp_sandbox_calls.elixir_internal(m), do: mfa
    assert helpers -- :seccomp_sandbox_calls.elixir_helpers() == []

    # Since 1.17 `m.f` is a helper call: the derivation must see it.
    if Version.match?(System.version(), ">= 1.17.0") do
      assert {:elixir_erl_pass, :no_parens_remote, 2} in helpers
    end
  end

  test "the compiler's modules are derived from the elixir application" do
    assert :seccomp_sandbox_calls.elixir_internal(:elixir_erl_pass)
    assert :seccomp_sandbox_calls.elixir_internal(:elixir)
    refute :seccomp_sandbox_calls.elixir_internal(Enum)
    refute :seccomp_sandbox_calls.elixir_internal(:lists)
  end

  for backend <- Backends.all() do
    test "#{backend}: helpers are checked like the calls they stand for" do
      run = fn code, opts ->
        Backends.run(unquote(backend), code, Map.merge(%{language: :elixir}, Map.new(opts)))
      end

      for policy <- [:pure, %{mode: :blacklist, rules: [:os, System]}] do
        assert {:error, {:seccomp_violation, {:os, :getpid, 0}}} =
                 run.("m = :os; m.getpid", policy: policy)

        assert {:error, {:seccomp_violation, {System, :pid, 0}}} =
                 run.("m = System; m.pid", policy: policy)

        assert {:ok, 1, _} = run.("map = %{a: 1}; map.a", policy: policy)
        assert {:ok, %{}, _} = run.("m = Map; m.new", policy: policy)
      end

      # Any other function of the compiler's modules is refused, whatever the policy.
      for policy <- [:pure, %{mode: :blacklist, rules: []}] do
        assert {:error, {:seccomp_violation, {:elixir_erl_pass, :translate, 3}}} =
                 run.(":elixir_erl_pass.translate(1, 2, 3)", policy: policy)
      end
    end
  end
end
