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

  # A fun that builds a new tower at each call: equal values, no pointer shared.
  @fresh_tower "s = fn -> Enum.reduce(1..40, 0, fn _, a -> {a, a} end) end"
  @erl_fresh_tower "S = fun() -> lists:foldl(fun(_, A) -> {A, A} end, 0, lists:seq(1, 40)) end"

  @words Enum.map_join(1..2_000, " ", &"survival_atom_#{&1}")

  # Small limits keep each refusal quick (the bounded walks stop at them);
  # the issue's own example keeps the default limits.
  @limits [max_heap_size: 200_000, max_binary: 2_000_000]
  @default_limits [:large_elements, :binary_doubling, :compile_pattern_loop]

  # Caller mode has no keeper: binaries a loop of direct library calls keeps,
  # with no checked call between, meet the caller's heap limit (OTP 27+) or
  # the watcher (before), which end the caller. (Default limits.)
  @caller_loops [
    {:direct_binary_loop, :elixir,
     "b = :binary.copy(<<?a>>, 10_000_000); length(for _ <- 1..1000, do: :base64.encode(b))"},
    {:direct_binary_loop, :erlang,
     "B = binary:copy(<<\"a\">>, 10000000), length([base64:encode(B) || _ <- lists:seq(1, 1000)])."}
  ]
  @denylist [policy: %{mode: :blacklist, rules: []}]

  @elixir [
    # A tower of literals the compiler folds: its passes do not share.
    literal_tower: "t = 0\n" <> String.duplicate("t = {t, t}\n", 40) <> ":ok",
    # A deep expression: the compiler's passes grow with its depth.
    deep_pipe: "1" <> String.duplicate(" |> Kernel.+(1)", 4000),
    # Each compiled pattern alone within the bounds, its table off the heap
    # behind a small handle: many of them kept.
    compile_pattern_loop:
      "pats = for i <- 1..1500, do: <<i::32>>; " <>
        "Enum.map(1..100_000, fn _ -> :binary.compile_pattern(pats) end) |> length()",
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
    # Bignum work that neither yields nor can be killed (operands of 4,000,000
    # bits: OTP 27 and later refuse integers above about 4,194,304).
    text_to_integer: ~S|rem(String.to_integer(String.duplicate("9", 1_000_000)), 7)|,
    integer_parse: ~S|Integer.parse(String.duplicate("9", 1_000_000))|,
    bytes_to_integer: "x = :binary.decode_unsigned(:binary.copy(<<255>>, 1_000_000)); rem(x, 7)",
    bignum_div:
      "<<x::size(4_000_000)>> = :binary.copy(<<255>>, 500_000); " <>
        "<<y::size(2_000_000)>> = :binary.copy(<<7>>, 250_000); div(x, y)",
    bignum_print: "<<x::size(4_000_000)>> = :binary.copy(<<255>>, 500_000); Integer.to_string(x)",
    bignum_interpolation: ~S|<<x::size(4_000_000)>> = :binary.copy(<<255>>, 500_000); "#{x}"|,
    # Integers multiplied by compiled library code, then printed.
    bignum_product: "Enum.product(1..200_000)",
    bignum_product_list:
      "x = Integer.pow(3, 30000); l = for _ <- 1..60, do: x; Enum.map_join([1], fn _ -> Enum.product(l) end)",
    # Hashing and comparing shared terms: keys, members, elements.
    hash_key: "#{@tuple_tower}; m = Map.new(1..40, &{&1, &1}); :maps.get(t, m, 0)",
    is_map_key: "#{@tuple_tower}; m = Map.new(1..40, &{&1, &1}); :erlang.is_map_key(t, m)",
    map_put: "#{@tuple_tower}; Map.put(%{}, t, 1)",
    map_literal_key: "#{@tuple_tower}; map_size(%{t => 1})",
    member_compare: "#{@tuple_tower}; #{@tuple_tower2}; :lists.member(t, [u])",
    mapset_new: "#{@tuple_tower}; #{@tuple_tower2}; MapSet.new([t, u])",
    usort: "#{@tuple_tower}; #{@tuple_tower2}; :lists.usort([t, u])",
    # Comparisons and hashes in patterns and guards, which no handler sees.
    pin_case: "#{@tuple_tower}; #{@tuple_tower2}; case u do ^t -> 1; _ -> 2 end",
    pin_match: "#{@tuple_tower}; #{@tuple_tower2}; ^t = u",
    pin_fn: "#{@tuple_tower}; #{@tuple_tower2}; f = fn ^t -> 1; _ -> 2 end; f.(u)",
    pin_with: "#{@tuple_tower}; #{@tuple_tower2}; with ^t <- u, do: 1",
    pin_for: "#{@tuple_tower}; #{@tuple_tower2}; for ^t <- [u], do: 1",
    pin_map_key: "#{@tuple_tower}; %{^t => v} = %{1 => 2}; v",
    repeated_case: "#{@tuple_tower}; #{@tuple_tower2}; case {t, u} do {x, x} -> 1; _ -> 2 end",
    repeated_fn: "#{@tuple_tower}; #{@tuple_tower2}; f = fn x, x -> 1; _, _ -> 2 end; f.(t, u)",
    repeated_match: "#{@tuple_tower}; #{@tuple_tower2}; {x, x} = {t, u}",
    guard_equal:
      "#{@tuple_tower}; #{@tuple_tower2}; case {t, u} do {a, b} when a == b -> 1; _ -> 2 end",
    guard_order:
      "#{@tuple_tower}; #{@tuple_tower2}; f = fn a, b when a < b -> 1; _, _ -> 2 end; f.(t, u)",
    guard_in: "#{@tuple_tower}; #{@tuple_tower2}; case t do x when x in [u] -> 1; _ -> 2 end",
    guard_outer: "#{@tuple_tower}; #{@tuple_tower2}; f = fn a when a === u -> 1; _ -> 2 end; f.(t)",
    guard_map_key: "#{@tuple_tower}; case %{1 => 2} do m when is_map_key(t, m) -> 1; _ -> 2 end",
    guard_reduce:
      "#{@tuple_tower}; #{@tuple_tower2}; Enum.reduce([t], u, fn x, acc when x == acc -> 1; _, acc -> acc end)",
    # One construction joins existing binaries: doubling reaches any size.
    binary_doubling: ~S|x = Enum.reduce(1..40, "a", fn _, a -> a <> a end); byte_size(x)|,
    interpolation_doubling:
      ~S|x = Enum.reduce(1..40, "a", fn _, a -> "#{a}#{a}" end); byte_size(x)|,
    bitstring_doubling:
      ~S|x = Enum.reduce(1..40, <<1::1>>, fn _, a -> <<a::bitstring, a::bitstring>> end); bit_size(x)|,
    # What a fun returns to compiled code, which compares, hashes or copies it.
    returned_sort_by: "#{@fresh_tower}; Enum.sort_by([1, 2], fn x -> {s.(), x} end)",
    returned_uniq_by: "#{@fresh_tower}; Enum.uniq_by([1, 2], fn _ -> s.() end)",
    returned_max_by: "#{@fresh_tower}; Enum.max_by([1, 2], fn _ -> s.() end)",
    returned_frequencies_by: "#{@fresh_tower}; Enum.frequencies_by([1, 2], fn _ -> s.() end)",
    returned_map_new: "#{@fresh_tower}; Map.new([1, 2], fn x -> {s.(), x} end)",
    # Expansion reads a date sigil's last word as a calendar: an atom and a
    # call of that module's parser, before any handler runs.
    calendar_atom: "~D[2020-01-01 SurvivalCalendar#{System.unique_integer([:positive])}]",
    calendar_module: "~N[2000-01-01 23:00:07 IEx.Info]",
    # Atoms made by a library call from data.
    fread_atoms:
      ~S|:io_lib.fread(String.to_charlist(String.duplicate("~a ", 5_000)), String.to_charlist(Enum.map_join(1..5_000, " ", &"fread_atom_#{&1}")))|
  ]

  @erlang [
    literal_tower:
      "T0 = 0, " <> Enum.map_join(1..40, "", &"T#{&1} = {T#{&1 - 1}, T#{&1 - 1}}, ") <> "ok.",
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
      "<<X:4000000>> = binary:copy(<<255>>, 500000), <<Y:2000000>> = binary:copy(<<7>>, 250000), X rem Y.",
    bignum_print: "<<X:4000000>> = binary:copy(<<255>>, 500000), integer_to_binary(X).",
    pin_case: "#{@erl_tuple_tower}, #{@erl_tuple_tower2}, case U of T -> 1; _ -> 2 end.",
    pin_match: "#{@erl_tuple_tower}, #{@erl_tuple_tower2}, T = U.",
    pin_receive: "#{@erl_tuple_tower}, receive T -> 1 after 0 -> 2 end.",
    pin_map_key: "#{@erl_tuple_tower}, " <> ~S|#{T := V} = #{1 => 2}, V.|,
    pin_generator: "#{@erl_tuple_tower}, #{@erl_tuple_tower2}, [1 || T <- [U]].",
    repeated_case:
      "#{@erl_tuple_tower}, #{@erl_tuple_tower2}, case {T, U} of {X, X} -> 1; _ -> 2 end.",
    repeated_fun:
      "#{@erl_tuple_tower}, #{@erl_tuple_tower2}, F = fun(X, X) -> 1; (_, _) -> 2 end, F(T, U).",
    repeated_try:
      "#{@erl_tuple_tower}, #{@erl_tuple_tower2}, try {T, U} of {X, X} -> 1; _ -> 2 catch _:_ -> 3 end.",
    guard_equal:
      "#{@erl_tuple_tower}, #{@erl_tuple_tower2}, case {T, U} of {A, B} when A == B -> 1; _ -> 2 end.",
    guard_fun:
      "#{@erl_tuple_tower}, #{@erl_tuple_tower2}, F = fun(A, B) when A =:= B -> 1; (_, _) -> 2 end, F(T, U).",
    guard_if: "#{@erl_tuple_tower}, #{@erl_tuple_tower2}, if T == U -> 1; true -> 2 end.",
    guard_element:
      "#{@erl_tuple_tower}, #{@erl_tuple_tower2}, case {T, U} of P when element(1, P) >= element(2, P) -> 1; _ -> 2 end.",
    binary_doubling:
      ~S|X = lists:foldl(fun(_, A) -> <<A/binary, A/binary>> end, <<"a">>, lists:seq(1, 40)), byte_size(X).|,
    returned_sort_by: "#{@erl_fresh_tower}, 'Elixir.Enum':sort_by([1, 2], fun(X) -> {S(), X} end).",
    returned_groups: "#{@erl_fresh_tower}, maps:groups_from_list(fun(_) -> S() end, [1, 2]).",
    returned_usort: "#{@erl_fresh_tower}, lists:usort(lists:map(fun(_) -> S() end, [1, 2])).",
    fread_atoms:
      ~S'io_lib:fread(lists:append(lists:duplicate(5000, "~a ")), lists:append([["fread_atom_e", integer_to_list(I), " "] || I <- lists:seq(1, 5000)])).'
  ]

  # The reason a monitored process died of, as the run's exit.
  @await_down "receive do {:DOWN, ^ref, _, _, r} -> exit(r) end"

  # Copies to other processes: messages, spawned funs, exit reasons.
  @processes [
    send_to_self: "#{@tuple_tower}; send(self(), t)",
    spawned_fun: "#{@tuple_tower}; Task.async(fn -> t end) |> Task.await()",
    exit_reason: "{_, ref} = spawn_monitor(fn -> #{@tuple_tower}; exit(t) end); #{@await_down}",
    crash_reason: "{_, ref} = spawn_monitor(fn -> #{@tuple_tower}; {:ok} = t end); #{@await_down}",
    agent_reply:
      "{:ok, a} = Agent.start_link(fn -> 1 end); Agent.get(a, fn _ -> #{@tuple_tower}; t end)",
    task_reply: "Task.async(fn -> #{@tuple_tower}; t end) |> Task.await()",
    send_to_member: "#{@tuple_tower}; p = spawn(fn -> Process.sleep(1000) end); send(p, t)",
    # A member that does not run never collects: its mailbox is sampled.
    mailbox_flood:
      "p = spawn(fn -> Process.sleep(60_000) end); l = Enum.to_list(1..10_000); " <>
        "Enum.each(1..1_000_000, fn _ -> send(p, l) end)"
  ]

  # Refused outright rather than bounded: library functions that make atoms
  # of their data.
  @refused [
    :ets_select_replace,
    :ets_init_table,
    :fread_atoms,
    :calendar_atom,
    :calendar_module,
    :priority_loop,
    :spawn_priority_loop,
    :agent_priority,
    :genserver_priority,
    :min_heap,
    :timer_to_name,
    :kernel_sup_by_node,
    :file_server_by_node,
    :timer_server,
    :timer_apply,
    :off_heap_queue
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
          result = run(p, mode)
          :seccomp_eval.release(p)
          result

        error ->
          error
      end
    end

    # A caller-mode run whose heap or binaries pass their bound ends its
    # caller (killed): the run goes in a process of its own here (the rule
    # is the probe's, released whatever happens to the run).
    defp run(p, :caller) do
      {_, ref} = spawn_monitor(fn -> exit({:done, :seccomp_eval.run(p, [], %{mode: :caller})}) end)

      receive do
        {:DOWN, ^ref, _, _, {:done, result}} -> result
        {:DOWN, ^ref, _, _, :killed} -> {:error, :caller_killed}
        {:DOWN, ^ref, _, _, other} -> {:unexpected, other}
      end
    end

    defp run(p, mode), do: :seccomp_eval.run(p, [], %{mode: mode})

    # The reason only: an `:ok' value would be the bug.
    # A linked process that died of a bound ends the run with its reason.
    defp outcome({:error, {:exception, _, reason, _}}) do
      text = inspect(reason)
      if text =~ "forged_term",
        do: {:error, {:exception, :forged}},
        else: {:error, {:exception, text =~ "memory_limit"}}
    end

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
    peer = Seccomp.Test.PeerVM.start([:elixir, :beam_seccomp], paths)
    :ok = :peer.call(peer, :logger, :set_primary_config, [:level, :none])
    [{mod, bin}] = Code.compile_string(@probe)
    {:module, _} = :peer.call(peer, :code, :load_binary, [mod, ~c"survival_probe", bin])
    # The shared call graph and the sets derived from it, once per VM.
    :ok = :peer.call(peer, :seccomp_flatteners, :ensure, [], 120_000)
    :ok = :peer.call(peer, :seccomp_reach, :ensure, [], 60_000)
    :ok = :peer.call(peer, :seccomp_opaque, :ensure, [], 60_000)
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
      {label, lang, mode, comparable(label, outcome)}
    end
  end

  # A flooded mailbox is sampled while the evaluation runs: on a loaded
  # machine the sample can come after the deadline, so either bound may be
  # the one that ends it.
  defp comparable(:mailbox_flood, {:error, reason}) when reason in [:timeout, :memory_limit],
    do: {:error, :timeout_or_memory_limit}

  defp comparable(_label, outcome), do: outcome

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

  # A denylist leaves process flags, spawn options and off-heap arrays to
  # the handler: a member above normal priority starves the keeper (and the
  # VM), and an array sized by data is allocated outside every heap.
  @flags [
    priority_loop: "Process.flag(:priority, :max); loop = fn f -> f.(f) end; loop.(loop)",
    spawn_priority_loop:
      "loop = fn f -> f.(f) end; :erlang.spawn_opt(fn -> loop.(loop) end, [priority: :high]); loop.(loop)",
    agent_priority: "Agent.start_link(fn -> 1 end, spawn_opt: [priority: :max])",
    genserver_priority:
      "loop = fn f -> f.(f) end; GenServer.start(Agent.Server, fn -> loop.(loop) end, spawn_opt: [priority: :max])",
    min_heap: ":erlang.process_flag(:min_heap_size, 1_000_000_000)",
    # A timer keeps its message off every heap until it fires: aimed at the
    # sandbox's own processes only (it ends with them), its message charged.
    timers_kept:
      "big = Enum.reduce(1..20, [1], fn _, a -> [a | a] end); " <>
        "Enum.each(1..100_000, fn _ -> :erlang.send_after(4_000_000_000, self(), big) end)",
    small_timers_kept:
      "Enum.each(1..1_000_000, fn i -> Process.send_after(self(), {i, :binary.copy(<<i>>, 10_000)}, 4_000_000_000) end)",
    timer_to_name: ":erlang.send_after(4_000_000_000, :seccomp_survival_nobody, :x)",
    # A registered process addressed as `{Name, Node}` is judged by its name.
    kernel_sup_by_node: "GenServer.stop({:kernel_sup, node()}, :shutdown, 1000)",
    file_server_by_node: "GenServer.call({:file_server_2, node()}, :get_cwd)",
    # Monitors and aliases are the runtime's records, a monitor's tag a copy.
    monitor_tags:
      "big = List.duplicate(1, 200_000); p = spawn(fn -> Process.sleep(10_000) end); " <>
        "Enum.each(1..1_000_000, fn _ -> :erlang.monitor(:process, p, [{:tag, big}]) end)",
    monitor_loop:
      "p = spawn(fn -> Process.sleep(10_000) end); Enum.each(1..10_000_000, fn _ -> Process.monitor(p) end)",
    alias_loop: "Enum.each(1..10_000_000, fn _ -> :erlang.alias() end)",
    timer_server: ":timer.send_interval(4_000_000_000, :seccomp_survival_nobody, :x)",
    timer_apply: ":timer.apply_after(4_000_000_000, :lists, :seq, [1, 2])",
    # An off-heap queue is outside the heap limit; senders fill it.
    off_heap_queue:
      "sink = spawn(fn -> Process.flag(:message_queue_data, :off_heap); receive do :never -> :ok end end); " <>
        "payload = Enum.to_list(1..50_000); " <>
        "for _ <- 1..3, do: spawn(fn -> f = fn f -> send(sink, payload); f.(f) end; f.(f) end); " <>
        "Process.flag(:message_queue_data, :off_heap)",
    atomics_new: "for _ <- 1..8, do: :atomics.new(100_000_000, [])",
    counters_new: ":counters.new(100_000_000, [])",
    # Each array alone within the bounds: many of them kept.
    atomics_loop: "Enum.map(1..100_000, fn _ -> :atomics.new(200_000, []) end) |> length()",
    counters_loop:
      "Enum.map(1..100_000, fn _ -> :counters.new(200_000, [:write_concurrency]) end) |> length()",
    # Each table kept just under the bound by the code itself: many tables.
    ets_tables:
      "l = Enum.to_list(1..1000); fill = fn t -> Enum.reduce_while(1..1_000_000, 0, fn i, _ -> " <>
        "if :ets.info(t, :memory) * 8 > 3_000_000, do: {:halt, 0}, else: {:cont, :ets.insert(t, {i, l})} end) end; " <>
        "for _ <- 1..1_000, do: fill.(:ets.new(:survival, []))",
    ets_volume:
      "t = :ets.new(:survival, []); l = Enum.to_list(1..1000); for i <- 1..10_000_000, do: :ets.insert(t, {i, l})",
    # Each object rebuilt unshared from the match specification's body:
    # the table doubles per call.
    ets_select_replace:
      "t = :ets.new(:survival, []); :ets.insert(t, {1, Enum.to_list(1..10_000)}); " <>
        ~S|ms = [{{:"$1", :"$2"}, [], [{{:"$1", {{:"$2", :"$2"}}}}]}]; | <>
        "for _ <- 1..40, do: :ets.select_replace(t, ms)",
    # As many objects as a fun yields, in one call.
    ets_init_table:
      "t = :ets.new(:survival, []); l = Enum.to_list(1..1000); " <>
        "g = fn g, i -> fn :read -> {[{i, l}], g.(g, i + 1)}; :close -> :ok end end; " <>
        ":ets.init_table(t, g.(g, 0))"
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
        {label, code} <- sink_cases() ++ @output ++ @flags,
        mode <- modes,
        do: {label, code, :elixir, mode, @denylist ++ @limits}
      ),
      for(
        {label, code} <- @capture,
        mode <- [:eval],
        do: {label, code, :elixir, mode, [output: :capture] ++ @denylist ++ @limits}
      ),
      for({label, lang, code} <- @caller_loops, do: {label, code, lang, :caller, []}),
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
           "the second pass answered differently: #{inspect(second -- first)} (first: #{inspect(first -- second)})"

    assert Seccomp.Test.Wait.eventually(fn ->
             {atoms2, procs2, memory2} = footprint(peer)
             atoms2 == atoms and procs2 <= procs and memory2 <= memory + 16_000_000
           end),
           "footprint before #{inspect({atoms, procs, memory})}, after #{inspect(footprint(peer))}"

    assert :peer.call(peer, :erlang, :+, [1, 2]) == 3
    # The refusals are the bounds at work, not failures of some other kind.
    # Caller mode refuses processes (and receive) altogether.
    bounds = [:atom_limit, :memory_limit, :timeout_or_memory_limit, {:exception, true}]

    others =
      Enum.reject(first, fn {label, _, mode, {:error, r}} ->
        r in bounds or (mode == :caller and r in [:seccomp_violation, :unsafe_form, :caller_killed]) or
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
      # (A scanner's text is bounded by what the run may still make.)
      assert :seccomp_profiles.kind(m, f, a) in [:refused | counted] or
               :seccomp_reach.scans_atoms(m),
             "#{inspect({m, f, a})}"

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

  # Compiled patterns made by hand: `re` runs their bytecode unchecked (the
  # process dies where no catch sees it, or the VM with it). Forged directly,
  # inside a `Regex` struct, decoded from a binary, corrupted from a genuine
  # one, nested in a list; refused in every mode, while genuine ones work.
  @forged_elixir [
    raw: ~S|:re.run("x", {:re_pattern, 0, 0, 0, "ERCP"})|,
    corrupted:
      ~S|{:ok, {:re_pattern, a, b, c, code}} = :re.compile("a+b"); | <>
        ~S|:re.run("aab", {:re_pattern, a, b, c, :binary.part(code, 0, 40) <> :binary.copy(<<255>>, byte_size(code) - 40)})|,
    struct: ~S'Regex.run(%{~r/a/ | re_pattern: {:re_pattern, 0, 0, 0, "ERCP"}}, "a")',
    struct_split: ~S'String.split("a,b", %{~r/,/ | re_pattern: {:re_pattern, 1, 0, 0, "ERCP"}})',
    nested:
      ~S'Enum.map([%{~r/a/ | re_pattern: {:re_pattern, 0, 0, 0, "ERCP"}}], &Regex.run(&1, "a"))',
    decoded:
      ~S|:re.run("x", :erlang.binary_to_term(:erlang.term_to_binary({:re_pattern, 0, 0, 0, "ERCP"})))|,
    inspect: ~S|:re.inspect({:re_pattern, 0, 0, 0, "ERCP"}, :namelist)|,
    exported: ~S|apply(:re, :import, [{:re_exported_pattern, "re-PCRE2", "a", [:export], "S2RP"}])|
  ]

  @forged_erlang [
    raw: ~S|re:run("x", {re_pattern, 0, 0, 0, <<"ERCP">>}).|,
    replace: ~S|re:replace("x", {re_pattern, 0, 0, 0, <<"ERCP">>}, "y").|,
    split: ~S|re:split("x", {re_pattern, 0, 0, 0, <<"ERCP">>}).|,
    applied: ~S|erlang:apply(re, run, ["x", {re_pattern, 0, 0, 0, <<"ERCP">>}]).|,
    in_fun: ~S|lists:map(fun(P) -> re:run("x", P) end, [{re_pattern, 0, 0, 0, <<"ERCP">>}]).|
  ]

  @genuine_elixir [
    ~S|Regex.run(~r/a(b)/i, "xAb")|,
    ~S|String.split("a,b", ~r/,/)|,
    ~S|Regex.replace(~r/b/, "abc", "x")|,
    ~S|Enum.map([~r/a/, ~r/b/], &Regex.match?(&1, "b"))|,
    ~S|{:ok, r} = :re.compile("b"); :re.run("abc", r)|
  ]

  @genuine_erlang [
    ~S|{ok, R} = re:compile("b"), re:run("abc", R).|,
    ~S|re:run("abc", "b").|,
    ~S|{ok, R} = re:compile("b"), lists:map(fun(S) -> re:run(S, R) end, ["b", "c"]).|
  ]

  test "forged compiled patterns are refused in every mode; genuine ones work", %{peer: peer} do
    modes = [:eval, :pool, :caller]

    forged =
      for({label, code} <- @forged_elixir, do: {label, code, :elixir}) ++
        for {label, code} <- @forged_erlang, do: {label, code, :erlang}

    for {label, code, lang} <- forged, mode <- modes do
      {outcome, ms, _queued, _atoms} = attack(peer, label, code, lang, mode, [])
      where = "forged #{label} (#{lang}, #{mode})"
      assert match?({:error, _}, outcome), "#{where}: #{inspect(outcome)}"
      assert ms <= @timeout + @margin, "#{where} took #{ms} ms"
      # Before OTP 28 every forged pattern is refused as such; from OTP 28 the
      # old form holds no bytecode (`re` refuses it) and `re:import` exists.
      if label in [:raw, :replace, :split, :applied, :in_fun, :struct, :struct_split, :nested] do
        assert outcome in [{:error, {:exception, :forged}}, {:error, {:exception, false}}],
               "#{where}: #{inspect(outcome)}"
      end
    end

    genuine =
      for(code <- @genuine_elixir, do: {code, :elixir}) ++
        for(code <- @genuine_erlang, do: {code, :erlang})

    for {code, lang} <- genuine, mode <- modes do
      {outcome, _ms, _queued, _atoms} = attack(peer, :genuine, code, lang, mode, [])
      assert outcome == :ok, "genuine #{code} (#{lang}, #{mode}): #{inspect(outcome)}"
    end

    assert :peer.call(peer, :erlang, :+, [1, 2]) == 3
  end

  # The host's state is out of reach under a denylist that does not name
  # it: ETS tables the sandbox does not own, persistent_term, application
  # environment, the VM's standard output, what system_info tells of other
  # processes (their mailboxes) and of the loaded code.
  test "a denylist sandbox neither reads nor changes the host's state, in every mode" do
    table = :ets.new(:survival_host_table, [:named_table, :public])
    :ets.insert(table, {:secret, "ETS_SECRET"})
    :persistent_term.put(:survival_host_secret, "PT_SECRET")
    Application.put_env(:beam_seccomp, :survival_host_secret, "ENV_SECRET")
    dir = System.tmp_dir!() |> Path.join("survival_dets_#{System.unique_integer([:positive])}")
    File.mkdir_p!(dir)
    host_dets = String.to_charlist(Path.join(dir, "host.dets"))
    {:ok, _} = :dets.open_file(:survival_host_dets, file: host_dets)
    :ok = :dets.insert(:survival_host_dets, {:secret, "DETS_SECRET"})

    probes = [
      ~S|:ets.lookup(:survival_host_table, :secret)|,
      ~S|:ets.tab2list(:survival_host_table)|,
      ~S|:ets.insert(:survival_host_table, {:secret, "pwned"})|,
      ~S|:ets.delete(:survival_host_table)|,
      ~S|:ets.all()|,
      ~S|:persistent_term.get(:survival_host_secret)|,
      ~S|Application.get_env(:beam_seccomp, :survival_host_secret)|,
      ~S|:application.get_all_env(:beam_seccomp)|,
      ~S|:erlang.display(:survival_display)|,
      ~S|:erlang.process_display(self(), :backtrace)|,
      ~S|:erlang.system_info(:procs)|,
      ~S|apply(:erlang, :system_info, [:loaded])|,
      ~S|(&:erlang.system_info/1).(:info)|,
      # Tables kept in files by processes of their own.
      ~S|:dets.lookup(:survival_host_dets, :secret)|,
      ~S|:dets.insert(:survival_host_dets, {:secret, "pwned"})|,
      ~s|:dets.open_file(:survival_own_dets, file: ~c"#{dir}/own.dets")|
    ]

    try do
      for code <- probes, mode <- [:eval, :pool, :caller] do
        opts = [language: :elixir, policy: %{mode: :blacklist, rules: [:os]}]

        result =
          case mode do
            :eval ->
              :seccomp_eval.eval(code, opts)

            mode ->
              {:ok, p} = :seccomp_eval.prepare(code, opts ++ [mode: mode])
              r = :seccomp_eval.run(p, [])
              :seccomp_eval.release(p)
              r
          end

        assert {:error, {:seccomp_violation, _}} = result, "#{code} (#{mode}): #{inspect(result)}"
        assert :ets.lookup(table, :secret) == [secret: "ETS_SECRET"]
        assert :dets.lookup(:survival_host_dets, :secret) == [secret: "DETS_SECRET"]
        refute File.exists?(Path.join(dir, "own.dets"))
      end

      # The sandbox's own tables stay usable.
      assert {:ok, [{1, 2}], _} =
               :seccomp_eval.eval(
                 "t = :ets.new(:mine, []); :ets.insert(t, {1, 2}); :ets.lookup(t, 1)",
                 language: :elixir,
                 policy: %{mode: :blacklist, rules: [:os]}
               )

      # ...and so do the items of system_info that describe the VM.
      assert {:ok, _, _} =
               :seccomp_eval.eval(":erlang.system_info(:otp_release)",
                 language: :elixir,
                 policy: %{mode: :blacklist, rules: [:os]}
               )
    after
      :dets.close(:survival_host_dets)
      File.rm_rf!(dir)
      :ets.delete(table)
      :persistent_term.erase(:survival_host_secret)
      Application.delete_env(:beam_seccomp, :survival_host_secret)
    end
  end

  test "every function that can reach a built-in trusting a compiled pattern is mediated" do
    :ok = :seccomp_opaque.ensure()
    {:ok, derived} = :seccomp_opaque.derive()
    assert :seccomp_opaque.sinks() -- derived == []

    for mfa <- [{Regex, :run, 2}, {String, :split, 2}, {String, :replace, 3}, {:re, :run, 2}] do
      assert mfa in derived
    end

    assert Enum.all?(derived, fn {m, f, a} -> :seccomp_opaque.member(m, f, a) end)
    assert [] == for({m, f, a} <- derived, :seccomp_sandbox_calls.direct(m, f, a), do: {m, f, a})
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
