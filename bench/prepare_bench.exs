# Prepared code, against the same rules compiled natively in a plain module.
# Loaded by bench/bench.exs, which defines Bench and Bench.Loop.
defmodule Bench.Rules do
  @moduledoc false
  # Typical rule and transform expressions: {name, code, bindings}.
  def all do
    [
      {"arithmetic on maps",
       """
       subtotal = order.price * order.qty
       subtotal - subtotal * order.discount / 100 + Map.get(order, :shipping, 0)
       """, [order: %{price: 12.5, qty: 3, discount: 10, shipping: 4}]},
      {"Enum pipeline over 100 elements",
       "list |> Enum.filter(&(rem(&1, 3) == 0)) |> Enum.map(&(&1 * &1)) |> Enum.sum()",
       [list: Enum.to_list(1..100)]},
      {"string formatting",
       ~S|"#{String.upcase(name)}: #{Float.round(total / count, 2)} (#{count} items)"|,
       [name: "alice", total: 42, count: 3]},
      {"nested case/with",
       """
       with {:ok, age} <- Map.fetch(user, :age), true <- age >= 18 do
         case user.country do
           "FR" -> :eu
           "DE" -> :eu
           "US" -> :us
           _ -> :other
         end
       else
         _ -> :minor
       end
       """, [user: %{age: 30, country: "DE"}]}
    ]
  end

  # 50-line pricing rules, for the time `prepare` takes: reading fields of a
  # map on every line, or plain variables.
  def fifty_lines(field) do
    steps =
      for i <- 1..48 do
        prev = if i == 1, do: field.(:price), else: "v#{i - 1}"
        "v#{i} = #{prev} * #{1 + rem(i, 3)} + #{field.(:qty)} - #{i}"
      end

    Enum.join(steps ++ ["total = v48 + #{field.(:shipping)}", "Float.round(total / 1000, 2)"], "\n")
  end

  # The same code, compiled as plain functions of the bindings.
  def compile_native do
    defs =
      for {{_, code, bindings}, i} <- Enum.with_index(all()) do
        args = bindings |> Keyword.keys() |> Enum.join(", ")
        "def r#{i}(#{args}) do\n#{code}\nend"
      end

    Code.compile_string("defmodule Bench.Native do\n#{Enum.join(defs, "\n")}\nend")
  end
end

defmodule Bench.Echo do
  @moduledoc false
  use GenServer
  def init(s), do: {:ok, s}
  def handle_call(msg, _from, s), do: {:reply, msg, s}
end

IO.puts("\n== prepared code (Seccomp.Eval.prepare/run) vs the same code compiled natively")
Bench.Rules.compile_native()
{:ok, echo} = GenServer.start_link(Bench.Echo, nil)
call_ns = Bench.ns(fn n -> Bench.Loop.run(n, fn -> GenServer.call(echo, :ping) end) end, 200_000)
Bench.plain("GenServer.call round trip (pool baseline)", Float.round(call_ns / 1000, 2), "µs")

for {{name, code, bindings}, i} <- Enum.with_index(Bench.Rules.all()) do
  args = Keyword.values(bindings)
  fun = :"r#{i}"
  {:ok, prepared} = Seccomp.Eval.prepare(code, bindings: bindings)
  {:ok, value, _} = Seccomp.Eval.run(prepared, bindings, mode: :caller)
  ^value = apply(Bench.Native, fun, args)
  n = 100_000
  native = Bench.ns(fn n -> Bench.Loop.run(n, fn -> apply(Bench.Native, fun, args) end) end, n)

  caller =
    Bench.ns(
      fn n -> Bench.Loop.run(n, fn -> Seccomp.Eval.run(prepared, bindings, mode: :caller) end) end,
      n
    )

  pool =
    Bench.ns(
      fn n -> Bench.Loop.run(n, fn -> Seccomp.Eval.run(prepared, bindings) end) end,
      div(n, 4)
    )

  eval =
    Bench.ns(
      fn n -> Bench.Loop.run(n, fn -> Seccomp.Eval.eval(code, bindings: bindings) end) end,
      300
    )

  plain = Bench.ns(fn n -> Bench.Loop.run(n, fn -> Code.eval_string(code, bindings) end) end, 300)
  :ok = Seccomp.Eval.release(prepared)

  IO.puts("#{name}:")
  Bench.row("  native (plain module)", native, native, "native")
  Bench.row("  run, caller mode", caller, native, "native")
  Bench.row("  run, warm pool", pool, call_ns + native, "GenServer.call + native")
  Bench.row("  eval", eval, native, "native")
  Bench.row("  Code.eval_string", plain, native, "native")
end

# Captures of allowed functions handed to library code, against the same
# code compiled natively.
capture = "Enum.reduce(list, 0, &+/2)"
capture_list = Enum.to_list(1..100_000)
{:ok, capture_rule} = Seccomp.Eval.prepare(capture, bindings: [:list])

capture_native =
  Bench.ns(fn n -> Bench.Loop.run(n, fn -> Enum.reduce(capture_list, 0, &+/2) end) end, 20)

for mode <- [:caller, :pool] do
  ns =
    Bench.ns(
      fn n ->
        Bench.Loop.run(n, fn -> Seccomp.Eval.run(capture_rule, [list: capture_list], mode: mode) end)
      end,
      20
    )

  Bench.row("capture #{capture}, run, #{mode} mode", ns, capture_native, "native")
end

:ok = Seccomp.Eval.release(capture_rule)

for {kind, field, bindings} <- [
      {"map fields", &"order.#{&1}", [:order]},
      {"plain variables", &to_string/1, [:price, :qty, :shipping]}
    ],
    optimize <- [false, true] do
  fifty = Bench.Rules.fifty_lines(field)

  prepare = fn ->
    {:ok, p} = Seccomp.Eval.prepare(fifty, bindings: bindings, mode: :caller, optimize: optimize)
    Seccomp.Eval.release(p)
  end

  ns = Bench.ns(fn n -> Bench.Loop.run(n, prepare) end, 20)
  name = "prepare + release, 50-line rule, #{kind} (optimize: #{optimize})"
  Bench.plain(name, Float.round(ns / 1_000_000, 1), "ms")
end
