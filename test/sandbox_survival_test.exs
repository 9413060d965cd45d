defmodule Seccomp.SandboxSurvivalTest do
  # Inputs that abort or hang the whole VM when a bound is missing: each runs
  # in a VM of its own (a peer), in both languages and all three modes (eval,
  # prepared pool run, prepared caller-mode run), so a regression fails the
  # suite instead of killing it. Each must end with {:error, _} within the
  # timeout plus a bounded margin, leave the peer alive with no message left
  # behind, and, run a second time, grow neither atoms nor processes, and
  # leave memory where it was.
  use ExUnit.Case, async: false
  @moduletag :capture_log
  @moduletag timeout: 300_000

  @timeout 2_000
  @margin 1_500

  # Doubling without any duplicate call: a few hundred words on the heap,
  # 2^40 nodes or 2^41 bytes flattened.
  @tuple_tower "t = Enum.reduce(1..40, {1, 1}, fn _, t -> {t, t} end)"
  @tuple_tower2 "u = Enum.reduce(1..40, {1, 1}, fn _, u -> {u, u} end)"
  @io_tower ~S|t = Enum.reduce(1..40, ["ab"], fn _, t -> [t, t] end)|
  @erl_tuple_tower "T = lists:foldl(fun(_, A) -> {A, A} end, {1, 1}, lists:seq(1, 40))"
  @erl_tuple_tower2 "U = lists:foldl(fun(_, A) -> {A, A} end, {1, 1}, lists:seq(1, 40))"
  @erl_io_tower ~S|T = lists:foldl(fun(_, A) -> [A, A] end, [<<"ab">>], lists:seq(1, 40))|

  @words Enum.map_join(1..2_000, " ", &"survival_atom_#{&1}")

  # Small limits keep each refusal quick (the bounded walks stop at them);
  # the issue's own example keeps the default limits.
  @limits [max_heap_size: 200_000, max_binary: 2_000_000]
  @default_limits [:large_elements]
  @denylist [policy: %{mode: :blacklist, rules: []}]

  @elixir [
    literal_bit_size: "<<0::123456789123456789>>",
    variable_bit_size: "n = 123456789123456789; <<0::size(n)>>",
    unit_bit_size: "n = 1_000_000_000; <<0::size(n)-unit(255)>>",
    large_elements:
      "b = :binary.copy(<<0>>, 10_000_000); :erlang.iolist_to_binary(List.duplicate(b, 100_000))",
    list_to_binary: "#{@io_tower}; :erlang.list_to_binary(t)",
    characters_to_binary: "#{@io_tower}; :unicode.characters_to_binary(t)",
    enum_join: "#{@io_tower}; Enum.join(t)",
    interpolation: @io_tower <> ~S|; "#{t}"|,
    binary_copy_of_iodata: "#{@io_tower}; :binary.copy(:erlang.iolist_to_binary(t), 2)",
    term_to_binary: "#{@tuple_tower}; :erlang.term_to_binary(t)",
    phash2: "#{@tuple_tower}; :erlang.phash2(t)",
    shared_result: @tuple_tower,
    shared_binding: "#{@tuple_tower}; :ok",
    shared_compare: "#{@tuple_tower}; #{@tuple_tower2}; t == u",
    shared_order: "#{@tuple_tower}; #{@tuple_tower2}; t < u",
    shared_raise: "#{@tuple_tower}; throw(t)",
    shared_badmatch: "#{@tuple_tower}; {:ok} = t",
    expansion_atoms: "~w(#{@words})a",
    expansion_atoms_raw: "~W(#{@words})a"
  ]

  @erlang [
    literal_bit_size: "<<0:123456789123456789>>.",
    variable_bit_size: "N = 123456789123456789, <<0:N>>.",
    large_elements:
      "B = binary:copy(<<0>>, 10000000), iolist_to_binary(lists:duplicate(100000, B)).",
    list_to_binary: "#{@erl_io_tower}, list_to_binary(T).",
    characters_to_binary: "#{@erl_io_tower}, unicode:characters_to_binary(T).",
    term_to_binary: "#{@erl_tuple_tower}, term_to_binary(T).",
    phash2: "#{@erl_tuple_tower}, erlang:phash2(T).",
    shared_result: "#{@erl_tuple_tower}, T.",
    shared_compare: "#{@erl_tuple_tower}, #{@erl_tuple_tower2}, T =:= U.",
    shared_raise: "#{@erl_tuple_tower}, throw(T).",
    shared_badmatch: "#{@erl_tuple_tower}, {ok} = T."
  ]

  # The reason a monitored process died of, as the run's exit.
  @await_down "receive do {:DOWN, ^ref, _, _, r} -> exit(r) end"

  # Copies to other processes: messages, spawned funs, exit reasons.
  @processes [
    send_to_self: "#{@tuple_tower}; send(self(), t)",
    spawned_fun: "#{@tuple_tower}; Task.async(fn -> t end) |> Task.await()",
    exit_reason: "{_, ref} = spawn_monitor(fn -> #{@tuple_tower}; exit(t) end); #{@await_down}",
    crash_reason: "{_, ref} = spawn_monitor(fn -> #{@tuple_tower}; {:ok} = t end); #{@await_down}",
    send_to_member: "#{@tuple_tower}; p = spawn(fn -> Process.sleep(1000) end); send(p, t)"
  ]

  # Runs inside the peer: one input in one mode, timed, and whether it left
  # a message in the calling process.
  @probe ~S"""
  defmodule Seccomp.SurvivalProbe do
    def run(code, lang, mode, opts) do
      atoms = :erlang.system_info(:atom_count)
      t0 = System.monotonic_time(:millisecond)
      result = attempt(code, lang, mode, opts)
      ms = System.monotonic_time(:millisecond) - t0
      {:message_queue_len, queued} = Process.info(self(), :message_queue_len)
      {outcome(result), ms, queued, :erlang.system_info(:atom_count) - atoms}
    end

    defp attempt(code, lang, :eval, opts), do: :seccomp_eval.eval(code, [language: lang] ++ opts)

    defp attempt(code, lang, mode, opts) do
      case :seccomp_eval.prepare(code, [language: lang, mode: mode] ++ opts) do
        {:ok, p} ->
          result = :seccomp_eval.run(p, [], %{mode: mode})
          :seccomp_eval.release(p)
          result

        error ->
          error
      end
    end

    # The reason only: an `:ok' value would be the bug.
    # A linked process that died of a bound ends the run with its reason.
    defp outcome({:error, {:exception, _, reason, _}}),
      do: {:error, {:exception, inspect(reason) =~ "memory_limit"}}

    defp outcome({:error, reason}), do: {:error, reason |> elem_or_self()}
    defp outcome({:ok, _, _}), do: :ok
    defp outcome(other), do: {:unexpected, other}

    defp elem_or_self(r) when is_tuple(r), do: elem(r, 0)
    defp elem_or_self(r), do: r

    def footprint do
      :erlang.garbage_collect()
      {:erlang.system_info(:atom_count), :erlang.system_info(:process_count), :erlang.memory(:total)}
    end
  end
  """

  setup_all do
    paths = Enum.reject(:code.get_path(), &List.starts_with?(&1, :code.root_dir()))
    args = Enum.flat_map(paths, &[~c"-pa", &1])
    {:ok, peer, _node} = :peer.start_link(%{connection: :standard_io, args: args})
    {:ok, _} = :peer.call(peer, :application, :ensure_all_started, [:elixir])
    {:ok, _} = :peer.call(peer, :application, :ensure_all_started, [:beam_seccomp])
    :ok = :peer.call(peer, :logger, :set_primary_config, [:level, :none])
    [{mod, bin}] = Code.compile_string(@probe)
    {:module, _} = :peer.call(peer, :code, :load_binary, [mod, ~c"survival_probe", bin])
    :ok = :peer.call(peer, :seccomp_flatteners, :ensure, [], 60_000)
    # Denylist cases: the derived rules' call graph, once per VM.
    :ok = :peer.call(peer, :seccomp_denylist, :ensure, [], 120_000)
    on_exit(fn -> catch_exit(:peer.stop(peer)) end)
    %{peer: peer}
  end

  defp attack(peer, label, code, lang, mode, opts) do
    opts = [timeout: @timeout] ++ opts

    try do
      :peer.call(
        peer,
        Seccomp.SurvivalProbe,
        :run,
        [code, lang, mode, opts],
        @timeout * 3 + @margin
      )
    catch
      kind, why -> flunk("#{label} (#{lang}, #{mode}) took the VM down: #{inspect({kind, why})}")
    end
  end

  defp footprint(peer), do: :peer.call(peer, Seccomp.SurvivalProbe, :footprint, [])

  # `warm`: code is loaded and the library's own atoms exist, so no input
  # may create an atom.
  defp run_batch(peer, cases, warm) do
    for {label, code, lang, mode, opts} <- cases do
      {outcome, ms, queued, atoms} = attack(peer, label, code, lang, mode, opts)
      where = "#{label} (#{lang}, #{mode})"
      assert match?({:error, _}, outcome), "#{where} returned #{inspect(outcome)}"
      assert ms <= @timeout + @margin, "#{where} took #{ms} ms"
      assert queued == 0, "#{where} left #{queued} messages in the caller"
      assert atoms == 0 or not warm, "#{where} created #{atoms} atoms"
      {label, lang, mode, outcome}
    end
  end

  # Every built-in sink, called through `apply` on a tower under a denylist
  # policy that allows it, so only the bound stands between the call and the
  # VM: iodata sinks on the iodata tower, the others on the tuple tower.
  # Extra arguments are ones the function accepts.
  # Output is a message to the group leader: a copy out of the sandbox.
  # (Run under the denylist.)
  @output [
    output_puts: "#{@io_tower}; IO.puts(t)",
    output_format: "#{@io_tower}; :io.format(~c\"~s\", [t])",
    output_inspect: "#{@tuple_tower}; IO.inspect(t, limit: :infinity)",
    # Other copies out of the process, allowed by the denylist.
    ets_insert: "#{@tuple_tower}; :ets.insert(:ets.new(:survival, []), {1, t})",
    send_after: "#{@tuple_tower}; :erlang.send_after(10_000, self(), t)"
  ]

  defp sink_cases do
    iodata = :seccomp_flatteners.iodata_sinks()

    for {m, f, a} <- :seccomp_flatteners.sinks() -- :seccomp_flatteners.copying_sinks() do
      {tower, first} = if {m, f, a} in iodata, do: {@io_tower, "t"}, else: {@tuple_tower, "t"}
      args = Enum.join([first | Enum.take(sink_extra_args(m, f), a - 1)], ", ")
      {:"sink_#{m}_#{f}_#{a}", "#{tower}; apply(#{inspect(m)}, #{inspect(f)}, [#{args}])"}
    end
  end

  defp sink_extra_args(:unicode, _), do: [":unicode", ":unicode"]
  defp sink_extra_args(:binary, :copy), do: ["2"]
  defp sink_extra_args(:erlang, f) when f in [:phash, :phash2], do: ["1000"]
  defp sink_extra_args(_m, _f), do: ["[]"]

  defp cases do
    modes = [:eval, :pool, :caller]

    [
      for({label, code} <- @elixir, mode <- modes, do: {label, code, :elixir, mode, limits(label)}),
      for({label, code} <- @erlang, mode <- modes, do: {label, code, :erlang, mode, limits(label)}),
      for(
        {label, code} <- sink_cases() ++ @output,
        mode <- modes,
        do: {label, code, :elixir, mode, @denylist ++ @limits}
      ),
      for(
        {label, code} <- @processes,
        mode <- modes,
        do: {label, code, :elixir, mode, [policy: :processes] ++ @limits}
      )
    ]
    |> Enum.concat()
  end

  defp limits(label), do: if(label in @default_limits, do: [], else: @limits)

  test "every input ends with an error in time and leaves the VM as it was", %{peer: peer} do
    cases = cases()
    # The first pass loads code and creates the atoms of the library itself.
    first = run_batch(peer, cases, false)
    # The first measure loads code of its own.
    _ = footprint(peer)
    {atoms, procs, memory} = footprint(peer)
    second = run_batch(peer, cases, true)

    assert first -- second == [],
           "the second pass answered differently: #{inspect(second -- first)}"

    assert Seccomp.Test.Wait.eventually(fn ->
             {atoms2, procs2, memory2} = footprint(peer)
             atoms2 == atoms and procs2 <= procs and memory2 <= memory + 16_000_000
           end),
           "footprint before #{inspect({atoms, procs, memory})}, after #{inspect(footprint(peer))}"

    assert :peer.call(peer, :erlang, :+, [1, 2]) == 3
    # The refusals are the bounds at work, not failures of some other kind.
    # Caller mode refuses processes (and receive) altogether.
    bounds = [:atom_limit, :memory_limit, {:exception, true}]

    others =
      Enum.reject(first, fn {_, _, mode, {:error, r}} ->
        r in bounds or (mode == :caller and r in [:seccomp_violation, :unsafe_form])
      end)

    assert others == []
  end

  test "every function that can reach a sink is mediated, never a direct call" do
    :ok = :seccomp_flatteners.ensure()
    {:ok, derived} = :seccomp_flatteners.derive()
    # The set is derived from the installed code; it holds the known paths.
    for mfa <- [
          {Enum, :join, 2},
          {List, :to_string, 1},
          {IO, :iodata_to_binary, 1},
          {String.Chars, :to_string, 1}
        ] do
      assert mfa in derived
    end

    assert :seccomp_flatteners.sinks() -- derived == []

    direct = for {m, f, a} <- derived, :seccomp_sandbox.direct(m, f, a), do: {m, f, a}
    assert direct == []
    assert Enum.all?(derived, fn {m, f, a} -> :seccomp_flatteners.member(m, f, a) end)
  end
end
