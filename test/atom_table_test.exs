defmodule Seccomp.AtomTableTest do
  # Atoms are never collected: however many evaluations and runs make them,
  # sandboxes together fill the VM's atom table to three quarters at most,
  # then get `atom_limit`. Run in a VM of its own with a small table, so a
  # regression ends that VM, not the suite.
  use ExUnit.Case, async: false
  @moduletag :capture_log

  @table 200_000

  setup_all do
    paths = Enum.reject(:code.get_path(), &(&1 == ~c"."))
    peer = Seccomp.Test.PeerVM.start([:elixir, :beam_seccomp], paths, [~c"+t", ~c"#{@table}"])
    # The library's own call graph is built on first need: before filling.
    :peer.call(peer, :seccomp_callgraph, :graph, [], 120_000)
    %{peer: peer}
  end

  # In one call of the peer (a prepared value lives as long as the process
  # that prepared it): prepare, then make atoms in each mode until the
  # first answer that is not a value, and what that answer was.
  @driver """
  code = ~S|for i <- 1..2000, do: String.to_atom("atom_table_\#{n}_\#{i}")|
  opts = [max_atoms: 2000]
  {:ok, rule} = Seccomp.Eval.prepare(code, [bindings: [:n]] ++ opts)

  fill = fn base, run ->
    Enum.find_value(1..400, fn i ->
      case run.(base + i) do
        {:ok, _, _} -> nil
        other -> {i, other, :erlang.system_info(:atom_count)}
      end
    end)
  end

  modes = [
    pool: fill.(0, &Seccomp.Eval.run(rule, [n: &1], mode: :pool)),
    caller: fill.(1000, &Seccomp.Eval.run(rule, [n: &1], mode: :caller)),
    eval: fill.(2000, &Seccomp.Eval.eval(code, [bindings: [n: &1]] ++ opts))
  ]

  Seccomp.Eval.release(rule)
  modes
  """

  test "evaluations and runs that make atoms stop at three quarters of the table", %{peer: peer} do
    {modes, _} = :peer.call(peer, Code, :eval_string, [@driver], 120_000)

    for {mode, answer} <- modes do
      assert {_, {:error, :atom_limit}, count} = answer, "#{mode}: #{inspect(answer)}"
      assert count <= div(@table, 4) * 3 + 1
    end

    # Atoms in the source itself (Erlang is scanned, Elixir probed) too.
    erlang = Enum.map_join(1..2000, ", ", &"source_atom_#{&1}") <> "."
    elixir = "[" <> Enum.map_join(1..2000, ", ", &":source_ex_atom_#{&1}") <> "]"

    assert {:error, :atom_limit} =
             :peer.call(peer, Seccomp.Eval, :eval, [erlang, [language: :erlang, max_atoms: 3000]])

    assert {:error, :atom_limit} =
             :peer.call(peer, Seccomp.Eval, :eval, [elixir, [max_atoms: 3000]])

    assert :peer.call(peer, :erlang, :+, [1, 2]) == 3
  end

  # A scanner makes an atom of every name in its text: a direct call is
  # counted against max_atoms before it runs (here, in this VM: 300 names).
  test "a scanner called on data makes no atoms past max_atoms, in every mode and language" do
    deny = [policy: [deny: [:os]]]

    sources = [
      elixir: ~S|:erl_scan.string(String.to_charlist(Enum.join(1..300, " scanned_#{tag}_")))|,
      erlang:
        ~S'erl_scan:string(lists:append([" scanned_" ++ atom_to_list(Tag) ++ "_" ++ integer_to_list(I) || I <- lists:seq(1, 300)])).'
    ]

    for {lang, code} <- sources, mode <- [:eval, :pool, :caller] do
      tag = :"#{lang}_#{mode}"
      var = if lang == :elixir, do: :tag, else: :Tag

      run = fn ->
        case mode do
          :eval ->
            Seccomp.Eval.eval(code, [language: lang, bindings: [{var, tag}]] ++ deny)

          mode ->
            {:ok, p} = Seccomp.Eval.prepare(code, [language: lang, bindings: [var]] ++ deny)
            r = Seccomp.Eval.run(p, [{var, tag}], mode: mode)
            Seccomp.Eval.release(p)
            r
        end
      end

      # The first run loads code (whose names are atoms too).
      run.()
      before = :erlang.system_info(:atom_count)
      result = run.()
      assert result == {:error, :atom_limit}, "#{lang} #{mode}: #{inspect(result)}"
      assert :erlang.system_info(:atom_count) - before < 100
    end
  end
end
