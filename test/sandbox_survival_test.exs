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
    expansion_atoms_raw: "~W(#{@words})a",
    # Output a product of the inputs' sizes: replacement, separators,
    # pattern tables (256 words per pattern byte).
    replace_product:
      ~S|String.replace(String.duplicate("a", 10_000), "a", String.duplicate("b", 200_000))|,
    join_separator: ~S|Enum.join(List.duplicate("a", 10_000), String.duplicate("b", 200_000))|,
    map_join_separator: ~S|Enum.map_join(1..10_000, String.duplicate("b", 200_000), & &1)|,
    pattern_table: ~S|String.split("x", [String.duplicate("a", 1_000_000), "b"])|,
    compile_pattern: ~S|:binary.compile_pattern([String.duplicate("a", 1_000_000), "b"])|,
    # Bignum work that neither yields nor can be killed.
    text_to_integer: ~S|rem(String.to_integer(String.duplicate("9", 1_000_000)), 7)|,
    integer_parse: ~S|Integer.parse(String.duplicate("9", 1_000_000))|,
    bytes_to_integer: "x = :binary.decode_unsigned(:binary.copy(<<255>>, 1_000_000)); rem(x, 7)",
    bignum_div:
      "<<x::size(8_000_000)>> = :binary.copy(<<255>>, 1_000_000); " <>
        "<<y::size(4_000_000)>> = :binary.copy(<<7>>, 500_000); div(x, y)",
    bignum_print: "<<x::size(8_000_000)>> = :binary.copy(<<255>>, 1_000_000); Integer.to_string(x)",
    bignum_interpolation: ~S|<<x::size(8_000_000)>> = :binary.copy(<<255>>, 1_000_000); "#{x}"|,
    # Hashing and comparing shared terms: keys, members, elements.
    hash_key: "#{@tuple_tower}; m = Map.new(1..40, &{&1, &1}); :maps.get(t, m, 0)",
    is_map_key: "#{@tuple_tower}; m = Map.new(1..40, &{&1, &1}); :erlang.is_map_key(t, m)",
    map_put: "#{@tuple_tower}; Map.put(%{}, t, 1)",
    map_literal_key: "#{@tuple_tower}; map_size(%{t => 1})",
    member_compare: "#{@tuple_tower}; #{@tuple_tower2}; :lists.member(t, [u])",
    mapset_new: "#{@tuple_tower}; #{@tuple_tower2}; MapSet.new([t, u])",
    usort: "#{@tuple_tower}; #{@tuple_tower2}; :lists.usort([t, u])",
    # Atoms made by a library call from data.
    fread_atoms:
      ~S|:io_lib.fread(String.to_charlist(String.duplicate("~a ", 5_000)), String.to_charlist(Enum.map_join(1..5_000, " ", &"fread_atom_#{&1}")))|
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
    shared_badmatch: "#{@erl_tuple_tower}, {ok} = T.",
    replace_product:
      ~S|binary:replace(binary:copy(<<"a">>, 10000), <<"a">>, binary:copy(<<"b">>, 200000), [global]).|,
    compile_pattern: ~S|binary:compile_pattern([binary:copy(<<"a">>, 1000000), <<"b">>]).|,
    split_patterns: ~S|binary:split(<<"x">>, [binary:copy(<<"a">>, 1000000), <<"b">>]).|,
    hash_key:
      "#{@erl_tuple_tower}, M = maps:from_list([{I, I} || I <- lists:seq(1, 40)]), maps:get(T, M, 0).",
    map_update_key: "#{@erl_tuple_tower}, " <> ~S|M = #{a => 1}, map_size(M#{T => 1}).|,
    member_compare: "#{@erl_tuple_tower}, #{@erl_tuple_tower2}, lists:member(T, [U]).",
    gb_sets_add:
      "#{@erl_tuple_tower}, #{@erl_tuple_tower2}, gb_sets:add(U, gb_sets:add(T, gb_sets:new())).",
    text_to_integer: "X = list_to_integer(lists:duplicate(1000000, $9)), X rem 7.",
    bignum_rem:
      "<<X:8000000>> = binary:copy(<<255>>, 1000000), <<Y:4000000>> = binary:copy(<<7>>, 500000), X rem Y.",
    bignum_print: "<<X:8000000>> = binary:copy(<<255>>, 1000000), integer_to_binary(X).",
    fread_atoms:
      ~S|io_lib:fread(lists:append(lists:duplicate(5000, "~a ")), lists:append([["fread_atom_e", integer_to_list(I), " "] \|\| I <- lists:seq(1, 5000)])).|
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

  # Refused outright rather than bounded: library functions that make atoms
  # of their data.
  @refused [:fread_atoms]

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
    # The shared call graph and the sets derived from it, once per VM.
    :ok = :peer.call(peer, :seccomp_flatteners, :ensure, [], 120_000)
    :ok = :peer.call(peer, :seccomp_reach, :ensure, [], 60_000)
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

  # Formatting for a capture happens in the host's capture process: its
  # work is bounded too (its heap: the writer sees the device terminate).
  # Prepared runs discard output without formatting it.
  @capture [
    capture_width: ~S|:io.format(~c"~*c", [30_000_000, ?a])|
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
        {label, code} <- @capture,
        mode <- [:eval],
        do: {label, code, :elixir, mode, [output: :capture] ++ @denylist ++ @limits}
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
      Enum.reject(first, fn {label, _, mode, {:error, r}} ->
        r in bounds or (mode == :caller and r in [:seccomp_violation, :unsafe_form]) or
          (label in @refused and r == :seccomp_violation) or
          (Keyword.has_key?(@capture, label) and match?({:exception, _}, r))
      end)

    assert others == []
  end

  # Reports of violations reach the host's log and subscribers: a loop of
  # caught violations in one run must not flood them.
  test "one run reports a bounded number of violations, in every mode" do
    :ok = Seccomp.subscribe()
    code = ~S|Enum.each(1..1_000, fn _ -> try do File.read!("x") rescue _ -> 0 end end)|

    for mode <- [:eval, :pool, :caller] do
      result =
        case mode do
          :eval ->
            :seccomp_eval.eval(code, language: :elixir)

          _ ->
            {:ok, p} = :seccomp_eval.prepare(code, language: :elixir, mode: mode)
            r = :seccomp_eval.run(p, [], %{mode: mode})
            :seccomp_eval.release(p)
            r
        end

      assert {:error, {:seccomp_violation, {File, :read!, 1}}} = result
      events = drain_events(0)
      assert events > 0 and events <= 100, "#{mode}: #{events} events"
    end
  end

  defp drain_events(n) do
    receive do
      {:seccomp_event, _} -> drain_events(n + 1)
    after
      500 -> n
    end
  end

  test "every function that can make atoms of data is refused, but those the handler counts" do
    :ok = :seccomp_reach.ensure()
    {:ok, %{atoms: derived}} = :seccomp_reach.derive()
    assert {:io_lib, :fread, 2} in derived
    assert :seccomp_reach.sinks(:atoms) -- derived == []
    counted = [:atom, :decode]

    for {m, f, a} <- derived do
      assert :seccomp_profiles.kind(m, f, a) in [:refused | counted], "#{inspect({m, f, a})}"
      refute :seccomp_sandbox_calls.direct(m, f, a)
    end
  end

  test "every function whose work grows faster than its input is bounded, never a direct call" do
    :ok = :seccomp_reach.ensure()
    {:ok, sets} = :seccomp_reach.derive()

    for group <- [:superlinear, :integer_text] do
      derived = sets[group]
      assert :seccomp_reach.sinks(group) -- derived == []
      assert Enum.all?(derived, fn {m, f, a} -> :seccomp_reach.member(group, m, f, a) end)
      assert [] == for({m, f, a} <- derived, :seccomp_sandbox_calls.direct(m, f, a), do: {m, f, a})
    end

    assert {String, :replace, 3} in sets.superlinear
    assert {Integer, :parse, 1} in sets.integer_text
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

    direct = for {m, f, a} <- derived, :seccomp_sandbox_calls.direct(m, f, a), do: {m, f, a}
    assert direct == []
    assert Enum.all?(derived, fn {m, f, a} -> :seccomp_flatteners.member(m, f, a) end)
  end
end
