# `make bench`: every number is printed with a baseline measured in the same run.
defmodule Bench.Loop do
  @moduledoc false
  # Compiled loops, so the loop itself costs the same for every subject.
  def run(0, _fun), do: :ok

  def run(n, fun),
    do:
      (
        fun.()
        run(n - 1, fun)
      )

  def nif(0), do: :ok

  def nif(n),
    do:
      (
        :seccomp_nif.noop()
        nif(n - 1)
      )

  def apply3(0, _m, _f, _a), do: :ok

  def apply3(n, m, f, a),
    do:
      (
        apply(m, f, a)
        apply3(n - 1, m, f, a)
      )

  def check(0, _mfa), do: :ok

  def check(n, {m, f, a} = mfa),
    do:
      (
        :seccomp_nif.check(m, f, a)
        check(n - 1, mfa)
      )

  def sapply(0, _m, _f, _a), do: :ok

  def sapply(n, m, f, a),
    do:
      (
        :seccomp.apply(m, f, a)
        sapply(n - 1, m, f, a)
      )

  def ets(0, _t, _k), do: :ok

  def ets(n, t, k),
    do:
      (
        :ets.member(t, k)
        ets(n - 1, t, k)
      )
end

defmodule Bench do
  @n 2_000_000

  # Best of three, in ns per operation.
  def ns(fun, n \\ @n) do
    for(_ <- 1..3, do: elem(:timer.tc(fn -> fun.(n) end), 0))
    |> Enum.min()
    |> Kernel.*(1000)
    |> Kernel./(n)
  end

  def in_restricted(policy, fun) do
    Task.async(fn ->
      :ok = :seccomp.restrict(policy)
      fun.()
    end)
    |> Task.await(:infinity)
  end

  def row(name, value, base, base_name),
    do:
      IO.puts(
        String.pad_trailing(name, 52) <>
          to_string(:io_lib.format("~12.1f ns ~8.2fx ~s", [value * 1.0, value / base, base_name]))
      )

  def plain(name, value, unit), do: IO.puts(String.pad_trailing(name, 52) <> "#{value} #{unit}")

  def rss_kb do
    File.read!("/proc/self/status")
    |> then(&Regex.run(~r/VmRSS:\s+(\d+)/, &1))
    |> Enum.at(1)
    |> String.to_integer()
  end
end

{:ok, _} = Application.ensure_all_started(:logger)
Logger.configure(level: :error)
{:ok, _} = Application.ensure_all_started(:beam_seccomp)
{:ok, cpu} = File.read("/proc/cpuinfo")
model = Regex.run(~r/model name\s*:\s*(.*)/, cpu) |> Enum.at(1)

IO.puts(
  "beam_seccomp bench — #{Date.utc_today()} — #{model}, #{System.schedulers_online()} schedulers, OTP #{System.otp_release()}, Elixir #{System.version()}\n"
)

IO.puts("== checks (1 restricted process)")
floor_nif = Bench.ns(&Bench.Loop.nif/1)
floor_apply = Bench.ns(&Bench.Loop.apply3(&1, :erlang, :abs, [-1]))
Bench.row("empty NIF call (floor)", floor_nif, floor_nif, "empty NIF")
Bench.row("erlang:apply/3 of a BIF (floor)", floor_apply, floor_nif, "empty NIF")

table = :ets.new(:bench, [:set, :public, read_concurrency: true])

results =
  for rules <- [10, 1_000, 100_000] do
    funs = for i <- 1..rules, do: String.to_atom("f#{i}")
    {:ok, policy} = :seccomp.policy(%{rules: for(f <- funs, do: {:bench_mod, f, 1})})
    :ets.insert(table, for(f <- funs, do: {{self(), :bench_mod, f, 1}}))
    hit = {:bench_mod, :f1, 1}

    {h, m} =
      Bench.in_restricted(policy, fn ->
        {Bench.ns(&Bench.Loop.check(&1, hit)), Bench.ns(&Bench.Loop.check(&1, {:other, :f, 1}))}
      end)

    Bench.row("seccomp:check hit, #{rules} rules", h, floor_nif, "empty NIF")
    Bench.row("seccomp:check miss, #{rules} rules", m, floor_nif, "empty NIF")
    {rules, policy, h}
  end

ets_hit = Bench.ns(&Bench.Loop.ets(&1, table, {self(), :bench_mod, :f1, 1}))
Bench.row("ETS check (read_concurrency), hit", ets_hit, floor_nif, "empty NIF")
{_, _, check_1k} = Enum.at(results, 1)
Bench.row("seccomp:check hit vs the ETS check", check_1k, ets_hit, "ETS check")

{:ok, lists_policy} = :seccomp.policy(%{rules: [:erlang]})

sapply =
  Bench.in_restricted(lists_policy, fn -> Bench.ns(&Bench.Loop.sapply(&1, :erlang, :abs, [-1])) end)

Bench.row("seccomp:apply vs plain apply", sapply, floor_apply, "plain apply")

IO.puts("\n== 1,000,000 restricted processes in the table")
{_, policy_1k, _} = Enum.at(results, 1)
:erlang.garbage_collect()
rss0 = Bench.rss_kb()
mem0 = :erlang.memory(:total)
sleepers = for _ <- 1..1_000_000, do: spawn(fn -> receive do: (:stop -> :ok) end)
rss1 = Bench.rss_kb()
mem1 = :erlang.memory(:total)
Enum.each(sleepers, &(:ok = :seccomp.restrict(&1, policy_1k)))
rss2 = Bench.rss_kb()
mem2 = :erlang.memory(:total)
Bench.plain("table size", :seccomp.table_size(), "processes")
per_proc = ((rss2 - rss1) * 1024 + max(0, mem2 - mem1 - max(0, (rss2 - rss1) * 1024))) / 1_000_000

Bench.plain(
  "memory per restricted process (RSS delta)",
  Float.round((rss2 - rss1) * 1024 / 1_000_000, 1),
  "bytes"
)

Bench.plain("  of which BEAM (monitor) memory", Float.round((mem2 - mem1) / 1_000_000, 1), "bytes")
_ = {rss0, mem0, per_proc}

h_1m =
  Bench.in_restricted(policy_1k, fn -> Bench.ns(&Bench.Loop.check(&1, {:bench_mod, :f1, 1})) end)

Bench.row("seccomp:check hit, 1,000 rules, 1M in table", h_1m, check_1k, "same check, 1 in table")
Enum.each(sleepers, &send(&1, :stop))

IO.puts("\n== eval sandbox")

corpus = [
  "1 + 2",
  "Enum.map([1, 2, 3], &(&1 * 2)) |> Enum.sum()",
  "String.upcase(\"hello \#{42}\")",
  "%{a: 1, b: 2} |> Map.put(:c, 3) |> Map.keys() |> length()",
  "for x <- 1..20, rem(x, 3) == 0, do: x * x",
  "case {:ok, 5} do {:ok, n} when n > 3 -> n * 2; _ -> 0 end"
]

per = fn fun -> Bench.ns(fn n -> Bench.Loop.run(n, fun) end, 300) end
plain_eval = per.(fn -> Enum.each(corpus, &Code.eval_string/1) end) / length(corpus)
sandbox_eval = per.(fn -> Enum.each(corpus, &Seccomp.Eval.eval/1) end) / length(corpus)

Bench.row(
  "eval, corpus of #{length(corpus)} expressions (per eval)",
  sandbox_eval,
  plain_eval,
  "Code.eval_string"
)

start = per.(fn -> Seccomp.Eval.eval(quote(do: 1)) end)
Bench.plain("sandbox start + teardown (quoted `1`)", Float.round(start / 1000, 1), "µs")
hof = "Enum.reduce(1..100_000, 0, fn x, acc -> x + acc end)"
hof_plain = Bench.ns(fn n -> Bench.Loop.run(n, fn -> Code.eval_string(hof) end) end, 5)
hof_box = Bench.ns(fn n -> Bench.Loop.run(n, fn -> Seccomp.Eval.eval(hof) end) end, 5)
Bench.row("HOF-heavy: #{hof}", hof_box, hof_plain, "Code.eval_string")
lib = "Enum.sum(1..1_000_000) + length(Enum.to_list(1..200_000))"
lib_plain = Bench.ns(fn n -> Bench.Loop.run(n, fn -> Code.eval_string(lib) end) end, 5)
lib_box = Bench.ns(fn n -> Bench.Loop.run(n, fn -> Seccomp.Eval.eval(lib) end) end, 5)
Bench.row("library does the work: #{lib}", lib_box, lib_plain, "Code.eval_string")
capture = "Enum.reduce(1..100_000, 0, &+/2)"
capture_plain = Bench.ns(fn n -> Bench.Loop.run(n, fn -> Code.eval_string(capture) end) end, 20)
capture_box = Bench.ns(fn n -> Bench.Loop.run(n, fn -> Seccomp.Eval.eval(capture) end) end, 20)

Bench.row(
  "capture of an allowed function: #{capture}",
  capture_box,
  capture_plain,
  "Code.eval_string"
)

Code.require_file("prepare_bench.exs", __DIR__)

IO.puts("\n== supervision")

defmodule Bench.Worker do
  use GenServer
  def start_link(_), do: GenServer.start_link(__MODULE__, nil)
  def init(s), do: {:ok, s}
end

{:ok, dyn} = DynamicSupervisor.start_link(strategy: :one_for_one)
{:ok, strings} = Seccomp.Policy.new(allow: [String])
plain_spec = Supervisor.child_spec({Bench.Worker, nil}, restart: :temporary)
restricted_spec = Seccomp.child_spec(plain_spec, strings)

start_child = fn spec ->
  fn n ->
    for _ <- 1..n,
        do:
          (
            {:ok, p} = DynamicSupervisor.start_child(dyn, spec)
            DynamicSupervisor.terminate_child(dyn, p)
          )
  end
end

plain_start = Bench.ns(start_child.(plain_spec), 5_000)
restricted_start = Bench.ns(start_child.(restricted_spec), 5_000)
Bench.row("start (and stop) a restricted child", restricted_start, plain_start, "plain child")

caller_start =
  Bench.in_restricted(strings, fn ->
    Bench.ns(
      fn n ->
        for _ <- 1..n,
            do:
              (
                {:ok, p} = :seccomp.start_child(dyn, plain_spec)
                DynamicSupervisor.terminate_child(dyn, p)
              )
      end,
      5_000
    )
  end)

Bench.row(
  "a restricted caller's start_child (its layers)",
  caller_start,
  plain_start,
  "plain child"
)

spawn_plain = Bench.ns(fn n -> for _ <- 1..n, do: spawn(fn -> :ok end) end, 100_000)

spawn_inherit =
  Bench.in_restricted(strings, fn ->
    Bench.ns(fn n -> for _ <- 1..n, do: :seccomp.spawn(fn -> :ok end) end, 100_000)
  end)

Bench.row("seccomp:spawn with inheritance", spawn_inherit, spawn_plain, "plain spawn")

# Every restricted process carries the inheriting tracer: any spawn inherits.
spawn_traced =
  Bench.in_restricted(strings, fn ->
    Bench.ns(fn n -> for _ <- 1..n, do: spawn(fn -> :ok end) end, 100_000)
  end)

Bench.row("plain spawn in a restricted process (tracer)", spawn_traced, spawn_plain, "plain spawn")

{:ok, no_os} = Seccomp.Policy.new(deny: [:os])

spawn_applied =
  Bench.in_restricted(no_os, fn ->
    Bench.ns(
      fn n -> for _ <- 1..n, do: :seccomp.apply(:erlang, :spawn, [fn -> :ok end]) end,
      100_000
    )
  end)

Bench.row(
  "seccomp:apply(erlang, spawn, [Fun]), blacklist",
  spawn_applied,
  spawn_plain,
  "plain spawn"
)

IO.puts("\n== distribution (loopback; a plain client node sends to a server node)")
tmp = Path.join(System.tmp_dir!(), "seccomp_bench_#{System.os_time()}")
File.mkdir_p!(tmp)
{:ok, :dist_bench} = :compile.file(~c"bench/dist_bench.erl", outdir: String.to_charlist(tmp))
ebin = :code.lib_dir(:beam_seccomp, :ebin)
true = :code.add_patha(String.to_charlist(tmp))
:ok = :dist_bench.run(ebin, String.to_charlist(tmp))
File.rm_rf!(tmp)
