defmodule Seccomp.AtomBoundsTest do
  # Atoms are never collected: what sandboxes make stays for the life of the
  # VM. Each run is bounded by `max_atoms`, all runs together by the VM-wide
  # reserve (`max_sandbox_atoms`, never past three quarters of the table),
  # and every function that can make atoms of data is refused, whatever the
  # policy. The tests that would exhaust the table if a bound regressed run
  # in a peer VM with a small table.
  use ExUnit.Case, async: false
  @moduletag :capture_log
  @moduletag timeout: 300_000

  alias Seccomp.Test.PeerVM

  @table 80_000
  @per_run 900
  @elixir_code ~S"""
  for i <- 1..900, do: String.to_atom("#{p}_#{n}_#{i}")
  :ok
  """
  @erlang_code ~S"""
  [list_to_atom(P ++ "_" ++ integer_to_list(N) ++ "_" ++ integer_to_list(I)) || I <- lists:seq(1, 900)],
  ok.
  """

  defp peer(env) do
    peer = PeerVM.start([], :code.get_path(), [~c"+t", ~c"#{@table}"])
    :ok = :peer.call(peer, :application, :load, [:beam_seccomp])
    for {k, v} <- env, do: :ok = :peer.call(peer, :application, :set_env, [:beam_seccomp, k, v])

    for app <- [:elixir, :beam_seccomp],
        do: {:ok, _} = :peer.call(peer, :application, :ensure_all_started, [app])

    # The derived sets make thousands of atoms of their own, and so does
    # loading the code a run uses (its function names, unless the call
    # graph was built here rather than read from its cache): before counting,
    # one run in each language.
    :ok = :peer.call(peer, :seccomp_reach, :ensure, [], 120_000)
    run = runner(peer)
    for n <- [10_000, 10_001], do: {:ok, :ok, _} = run.(n)
    peer
  end

  # One run that makes @per_run new atoms, in each language in turn (pool
  # and caller runs take from the same reserve: see below).
  defp runner(peer) do
    fn n ->
      p = "reserve"

      case rem(n, 2) do
        0 ->
          :peer.call(peer, Seccomp.Eval, :eval, [
            @elixir_code,
            [max_atoms: 1_000, bindings: [p: p, n: n]]
          ])

        1 ->
          erlang_eval(peer, p, n)
      end
    end
  end

  defp erlang_eval(peer, p, n) do
    opts = %{language: :erlang, max_atoms: 1_000, bindings: [P: ~c"#{p}", N: n]}

    case :peer.call(peer, :seccomp_eval, :eval, [String.to_charlist(@erlang_code), opts]) do
      {:ok, value, _bindings} -> {:ok, value, []}
      error -> error
    end
  end

  defp atoms(peer), do: :peer.call(peer, :erlang, :system_info, [:atom_count])

  # Runs until the first `atom_limit`, then as many again: all refused, the
  # table does not grow, the VM is alive.
  defp exhaust(peer) do
    run = runner(peer)
    before = atoms(peer)

    ok =
      Enum.reduce_while(1..1_000, 0, fn n, ok ->
        case run.(n) do
          {:ok, :ok, _} -> {:cont, ok + 1}
          {:error, :atom_limit} -> {:halt, ok}
        end
      end)

    assert ok < 1_000, "never refused"
    full = atoms(peer)
    assert full - before <= (ok + 1) * (@per_run + 50)

    for n <- 2_000..2_040, do: assert({:error, :atom_limit} = run.(n))
    assert atoms(peer) == full
    assert :peer.call(peer, :erlang, :node, []) != nil
    # Atoms of sources that are not atoms yet are refused too.
    assert {:error, :atom_limit} = :peer.call(peer, Seccomp.Eval, :eval, ["reserve_fresh_word_xyz"])
    {ok, full}
  end

  test "repeated runs making new atoms end with atom_limit at the VM-wide reserve, never a dead VM" do
    peer = peer([])
    cap = :peer.call(peer, :seccomp_atom_reserve, :cap, [])
    assert cap > 0 and cap < @table
    {ok, _full} = exhaust(peer)
    spent = :peer.call(peer, :seccomp_atom_reserve, :spent, [])
    assert spent <= cap
    # Refused once the reserve could not take another few runs' atoms (atoms
    # the runtime makes while a counted call runs are charged to the run).
    assert cap - spent < 5 * @per_run
    assert ok * @per_run <= cap
  end

  test "the reserve never lets sandboxes take the table past three quarters" do
    peer = peer(max_sandbox_atoms: 100_000_000)
    {_ok, full} = exhaust(peer)
    assert full <= div(@table, 4) * 3 + 1_000
    assert :peer.call(peer, :seccomp_atom_reserve, :spent, []) < 100_000_000
  end

  test "every mode and language takes the atoms it makes from the reserve" do
    {:ok, pool} = Seccomp.Eval.prepare(@elixir_code, max_atoms: 1_000, bindings: [:p, :n])

    {:ok, caller} =
      Seccomp.Eval.prepare(@elixir_code, max_atoms: 1_000, bindings: [:p, :n], mode: :caller)

    runs = [
      eval: fn p -> Seccomp.Eval.eval(@elixir_code, max_atoms: 1_000, bindings: [p: p, n: 1]) end,
      pool: fn p -> Seccomp.Eval.run(pool, [p: p, n: 1], mode: :pool) end,
      caller: fn p -> Seccomp.Eval.run(caller, [p: p, n: 1], mode: :caller) end,
      erlang: fn p ->
        :seccomp_eval.eval(String.to_charlist(@erlang_code), %{
          language: :erlang,
          max_atoms: 1_000,
          bindings: [P: ~c"#{p}", N: 1]
        })
      end
    ]

    for {mode, run} <- runs do
      # (The first run also makes the Erlang names of the code's variables.)
      assert {:ok, _, _} = run.("bounds_first_#{mode}")
      spent = :seccomp_atom_reserve.spent()
      assert {:ok, _, _} = run.("bounds_#{mode}")

      assert :seccomp_atom_reserve.spent() - spent == @per_run,
             "#{mode} #{:seccomp_atom_reserve.spent() - spent}"
    end

    Seccomp.Eval.release(pool)
    Seccomp.Eval.release(caller)
  end

  test "concurrent members of one run make at most max_atoms atoms" do
    code = ~S"""
    pids = for i <- 1..90, do: spawn(fn -> for j <- 1..90, do: String.to_atom("#{p}_#{i}_#{j}") end)
    Process.sleep(300)
    length(pids)
    """

    # The first run loads the code the others use.
    Seccomp.Eval.eval(code, policy: :processes, bindings: [p: "bounds_warm"])
    spent = :seccomp_atom_reserve.spent()

    for p <- ["bounds_race_a", "bounds_race_b"] do
      assert {:error, :atom_limit} = Seccomp.Eval.eval(code, policy: :processes, bindings: [p: p])
      made = for i <- 1..90, j <- 1..90, existing?("#{p}_#{i}_#{j}"), do: 1
      assert length(made) <= 100
    end

    assert :seccomp_atom_reserve.spent() - spent <= 200
  end

  # Functions that make atoms of every word of their data: under a denylist
  # too, in every mode and both languages, refused before any atom is made
  # (a scanner's text counted against what the run may still make).
  @makers [
    {"erl_scan_words", ~S|:erl_scan.string(String.to_charlist(words))|, :atom_limit},
    {"erl_scan_tokens", ~S|:erl_scan.tokens([], String.to_charlist(words) ++ ~c". ", 1)|,
     :atom_limit},
    {"quoted_words", ~S|Code.string_to_quoted("[" <> String.replace(words, " ", ", ") <> "]")|,
     {:seccomp_violation, {Code, :string_to_quoted, 1}}},
    {"concat_words", ~S|for w <- String.split(words), do: Module.concat("Bounds", w)|,
     {:seccomp_violation, {Module, :concat, 2}}}
  ]

  test "functions that make atoms of their data are refused or counted under a denylist, in every mode" do
    for {prefix, code, reason} <- @makers, mode <- [:eval, :pool, :caller] do
      words = Enum.map_join(1..300, " ", &"#{prefix}_#{mode}_#{&1}")
      opts = [policy: [deny: [:os]], bindings: [words: words]]

      result =
        case mode do
          :eval ->
            Seccomp.Eval.eval(code, opts)

          _ ->
            {:ok, p} = Seccomp.Eval.prepare(code, [mode: mode] ++ opts)
            r = Seccomp.Eval.run(p, [words: words], mode: mode)
            Seccomp.Eval.release(p)
            r
        end

      assert {:error, ^reason} = result, "#{prefix} #{mode}"
      refute Enum.any?(1..300, &existing?("#{prefix}_#{mode}_#{&1}")), "#{prefix} #{mode}"
    end

    words = Enum.map_join(1..300, " ", &"erl_scan_erlang_#{&1}")

    assert {:error, :atom_limit} =
             :seccomp_eval.eval(~c"erl_scan:string(W).", %{
               language: :erlang,
               policy: Seccomp.Policy.new!(deny: [:os]),
               bindings: [W: String.to_charlist(words)]
             })

    refute Enum.any?(1..300, &existing?("erl_scan_erlang_#{&1}"))
  end

  test "the derived atom makers include the scanners and parsers, called directly" do
    :ok = :seccomp_reach.ensure()
    {:ok, %{atoms: derived}} = :seccomp_reach.derive()

    for mfa <- [
          {:erl_scan, :string, 1},
          {:erl_scan, :string, 2},
          {:erl_scan, :tokens, 3},
          {:io_lib, :fread, 2},
          {Code, :string_to_quoted, 1},
          {Module, :concat, 2},
          {String, :to_atom, 1},
          {:erlang, :list_to_atom, 1}
        ],
        do: assert(mfa in derived, inspect(mfa))
  end

  defp existing?(name) do
    _ = String.to_existing_atom(name)
    true
  rescue
    ArgumentError -> false
  end
end
