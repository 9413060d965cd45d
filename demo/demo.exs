# A live walk through beam_seccomp: `make demo`.
defmodule Demo do
  def section(title), do: IO.puts("\n\e[1m== #{title}\e[0m")
  def ok(what, value), do: IO.puts("  \e[32mallowed\e[0m  #{what} -> #{inspect(value)}")
  def refused(what, why), do: IO.puts("  \e[31mrefused\e[0m  #{what} -> #{inspect(why)}")

  def show(what, result) do
    case result do
      {:ok, value, _} -> ok(what, value)
      {:error, reason} -> refused(what, reason)
      {:badrpc, reason} -> refused(what, {:badrpc, reason})
      other -> ok(what, other)
    end
  end

  def in_process(fun) do
    Task.async(fn ->
      try do
        fun.()
      rescue
        e in Seccomp.ViolationError -> {:error, Exception.message(e)}
        e in ErlangError -> {:error, e.original}
      end
    end)
    |> Task.await()
  end
end

{:ok, _} = Application.ensure_all_started(:logger)
Logger.configure(level: :error)
{:ok, _} = Application.ensure_all_started(:beam_seccomp)

Demo.section("1. A process restricts itself; its children inherit")

Demo.in_process(fn ->
  :ok = Seccomp.restrict(allow: [String, Enum])
  Demo.ok("Seccomp.apply(String, :upcase, [\"hi\"])", Seccomp.apply(String, :upcase, ["hi"]))

  denied =
    try do
      Seccomp.apply(File, :read!, ["/etc/passwd"])
    rescue
      e in Seccomp.ViolationError -> Exception.message(e)
    end

  Demo.refused("Seccomp.apply(File, :read!, [\"/etc/passwd\"])", denied)

  me = self()
  Seccomp.spawn(fn -> send(me, Seccomp.check({File, :read!, 1})) end)

  receive do
    v -> IO.puts("  child of the restricted process: check(File.read!/1) = #{inspect(v)}")
  after
    5000 -> IO.puts("  the child did not answer")
  end

  IO.puts("  status: #{inspect(Map.take(Seccomp.status(self()), [:mode, :checks, :denials]))}")
end)

Demo.section("2. Sandboxed eval of user expressions (profile :pure)")

for code <- [
      "[3, 1, 2] |> Enum.sort() |> Enum.map(&(&1 * 10))",
      "price * (1 - discount) |> Float.round(2)",
      "for x <- 1..5, rem(x, 2) == 1, into: %{}, do: {x, x * x}"
    ] do
  Demo.show(code, Seccomp.Eval.eval(code, bindings: [price: 100.0, discount: 0.15]))
end

for code <- [
      ~s{File.read!("/etc/passwd")},
      ~s{Enum.map(["HOME"], &System.get_env/1)},
      ~s{:lists.zipwith3(&:erlang.apply/3, [:os], [:cmd], [['id']])},
      ~s|send(:init, {:stop, :stop})|,
      ~s{defmodule Evil do end},
      ~s|Enum.into(["x"], %{__struct__: File.Stream, path: "/tmp/x", modes: [:write], line_or_bytes: :line, raw: true})|,
      ~S|for i <- 1..10_000, do: String.to_atom("atom#{i}")|,
      ~s{Enum.to_list(1..100_000_000)}
    ] do
  Demo.show(code, Seccomp.Eval.eval(code))
end

me = self()

tree = """
for _ <- 1..3 do
  spawn(fn -> send(test, {:spawned, spawn(fn -> Process.sleep(:infinity) end)}); Process.sleep(:infinity) end)
end
Process.sleep(:infinity)
"""

Demo.show(
  "a process tree that never ends (timeout: 300 ms)",
  Seccomp.Eval.eval(tree, policy: :processes, bindings: [test: me], send_to: [me], timeout: 300)
)

pids =
  for _ <- 1..3 do
    receive do
      {:spawned, p} -> p
    after
      5000 -> nil
    end
  end
  |> Enum.reject(&is_nil/1)

Process.sleep(50)
IO.puts("  processes it spawned still alive afterwards: #{Enum.count(pids, &Process.alive?/1)}")

Demo.section("3. A pricing rule prepared once, run a million times")

rule_src = "subtotal = price * qty\nsubtotal - subtotal * discount / 100"
IO.puts("  rule: #{inspect(rule_src)}")

{:ok, rule} =
  Seccomp.Eval.prepare(rule_src, bindings: [:price, :qty, :discount], mode: :caller, pool_size: 2)

bindings = [price: 12.5, qty: 3, discount: 10]
Demo.show("run(rule, #{inspect(bindings)})", Seccomp.Eval.run(rule, bindings))

{:ok, sneaky} =
  Seccomp.Eval.prepare(~S|m = String.to_existing_atom("Elixir.File"); m.read!("/etc/passwd")|)

Demo.show("a prepared rule that reaches for File.read!", Seccomp.Eval.run(sneaky, []))

Code.compile_string("""
defmodule Demo.NativeRule do
  def run(price, qty, discount) do
#{rule_src}
  end
  def loop(0, _), do: :ok
  def loop(n, fun), do: (fun.(); loop(n - 1, fun))
end
""")

rate = fn n, fun ->
  {us, :ok} = :timer.tc(fn -> Demo.NativeRule.loop(n, fun) end)
  n / us * 1_000_000
end

native = rate.(1_000_000, fn -> Demo.NativeRule.run(12.5, 3, 10) end)
caller = rate.(1_000_000, fn -> {:ok, 33.75, _} = Seccomp.Eval.run(rule, bindings) end)
pool = rate.(100_000, fn -> {:ok, 33.75, _} = Seccomp.Eval.run(rule, bindings, mode: :pool) end)

per_sec = fn r ->
  "#{r |> round() |> Integer.to_string() |> String.replace(~r/(\d)(?=(\d{3})+$)/, "\\1,")} runs/s"
end

IO.puts("  native module:        #{per_sec.(native)}")

IO.puts(
  "  prepared, caller mode: #{per_sec.(caller)} (#{Float.round(native / caller, 2)}x native's time per run)"
)

IO.puts("  prepared, warm pool:  #{per_sec.(pool)} (every eval limit enforced)")
:ok = Seccomp.Eval.release(rule)

Demo.section("4. A cluster that fears a leaked cookie")

ebin = :code.lib_dir(:beam_seccomp, :ebin)
cookie = ~c"leaked_cookie"
policy = ~C"#{default => #{rpc => [{erlang, node, 0}, {erlang, system_time, 0}]}}"

{:ok, prot, prot_node} =
  :peer.start(%{
    name: :peer.random_name(:protected),
    connection: :standard_io,
    args: [
      ~c"-setcookie",
      cookie,
      ~c"-pa",
      ebin,
      ~c"-proto_dist",
      ~c"seccomp",
      ~c"-beam_seccomp",
      ~c"dist_policy",
      policy
    ]
  })

{:ok, att, _} =
  :peer.start(%{
    name: :peer.random_name(:attacker),
    connection: :standard_io,
    args: [~c"-setcookie", cookie]
  })

IO.puts("  protected node #{prot_node} runs -proto_dist seccomp; the attacker holds the cookie")

attack = fn m, f, a -> :peer.call(att, :rpc, :call, [prot_node, m, f, a, 2000]) end

Demo.show(
  "rpc:call(protected, os, cmd, ['touch /tmp/seccomp_demo_pwned'])",
  attack.(:os, :cmd, [~c"touch /tmp/seccomp_demo_pwned"])
)

Demo.show("rpc:call(protected, erlang, halt, [])", attack.(:erlang, :halt, []))

Demo.show(
  "rpc:call(protected, erlang, node, [])  (allowed by the node's policy)",
  attack.(:erlang, :node, [])
)

IO.puts("  /tmp/seccomp_demo_pwned exists: #{File.exists?("/tmp/seccomp_demo_pwned")}")
IO.puts("  protected node stats: #{inspect(:peer.call(prot, :seccomp_dist, :stats, []))}")
:peer.stop(att)
:peer.stop(prot)

Demo.section("5. A supervision tree with per-worker capabilities")

defmodule Demo.Worker do
  use GenServer
  def start_link(name), do: GenServer.start_link(__MODULE__, name)
  def init(name), do: {:ok, name}
  def handle_call({:try, m, f, a}, _, s), do: {:reply, Seccomp.check({m, f, length(a)}), s}
end

{:ok, sup} =
  Supervisor.start_link(
    [
      Seccomp.child_spec(Supervisor.child_spec({Demo.Worker, :pricing}, id: :pricing),
        allow: [Enum, :math]
      ),
      Seccomp.child_spec(Supervisor.child_spec({Demo.Worker, :reports}, id: :reports),
        deny: [:os, System]
      ),
      # Unnamed: a registered process outside an application counts as a
      # system process, which a restricted caller may not reach.
      {DynamicSupervisor, strategy: :one_for_one}
    ],
    strategy: :one_for_one
  )

for {id, pid, _, _} <- Supervisor.which_children(sup), id in [:pricing, :reports] do
  IO.puts(
    "  #{id}: File.read/1 -> #{inspect(GenServer.call(pid, {:try, File, :read, [1]}))}, :os.cmd/1 -> #{inspect(GenServer.call(pid, {:try, :os, :cmd, [1]}))}"
  )
end

[{_, pricing, _, _}] = Enum.filter(Supervisor.which_children(sup), &(elem(&1, 0) == :pricing))
Process.exit(pricing, :kill)
Process.sleep(50)
[{_, restarted, _, _}] = Enum.filter(Supervisor.which_children(sup), &(elem(&1, 0) == :pricing))

IO.puts(
  "  pricing killed and restarted (#{inspect(pricing)} -> #{inspect(restarted)}): #{inspect(Seccomp.status(restarted).mode)}"
)

[{_, dynamic, _, _}] =
  Enum.filter(Supervisor.which_children(sup), &(elem(&1, 0) == DynamicSupervisor))

{:ok, child} =
  Demo.in_process(fn ->
    :ok = Seccomp.restrict(deny: [:os])
    Seccomp.apply(DynamicSupervisor, :start_child, [dynamic, {Demo.Worker, :helper}])
  end)

IO.puts(
  "  a restricted process asked DynamicSupervisor for a worker: the worker's :os.cmd/1 -> #{inspect(GenServer.call(child, {:try, :os, :cmd, [1]}))}"
)

IO.puts("\nDone.")
