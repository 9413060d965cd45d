defmodule Seccomp.SyntaxMediationTest do
  # The mediation passes know the running OTP's whole expression grammar, and
  # refuse what they do not know. The node types come from the running
  # `erl_parse` itself (its abstract-format types and what it parses the
  # corpus below into), so a new OTP's syntax makes this test fail loudly
  # until the passes mediate it.
  use ExUnit.Case, async: false
  @moduletag :capture_log
  alias Seccomp.Test.{Backends, Sentinels}

  # `P` marks a hole where an expression goes. The payload hands a raw
  # `fun os:putenv/2` to compiled code: it runs unless the pass rewrites it.
  @payload ~S|lists:zipwith(fun os:putenv/2, ["SECCOMP_PWNED"], ["1"])|

  # One entry or more per grammar rule of expressions and patterns (newer
  # rules are skipped where the running OTP cannot parse them).
  @corpus [
    "P.",
    ~S'a, $c, 1.5, 1, "s", X = 1, [], {P}, [P | []].',
    "\#{a => P}.",
    "M = \#{a => 1}, M\#{a := P}.",
    "B = <<1>>, <<B/binary, (length([P])):8/unit:1>>.",
    "-(length([P])), not true, 1 + 2.",
    "lists:reverse([P]), length([P]).",
    "[P \|\| X <- [1], X > 0].",
    "<< <<(length([P]))>> \|\| <<X>> <= <<1>> >>.",
    "\#{K => P \|\| K := V <- \#{a => 1}}.",
    "[P \|\| X <:- [1]].",
    "<< <<(length([P]))>> \|\| <<X>> <:= <<1>> >>.",
    "\#{K => P \|\| K := V <:- \#{a => 1}}.",
    "[{X, Y, P} \|\| X <- [1] && Y <- [2]].",
    "[{X, Y} \|\| X <- [1] && Y <- [P]].",
    "[P, 0 \|\| _ <- [x]].",
    "\#{a => 1, b => P \|\| _ <- [x]}.",
    "begin P end.",
    "if true -> P end.",
    "case 1 of 1 when is_integer(1) -> P; _ -> ok end.",
    "try P of X -> X catch error:R:S -> {R, S} after ok end.",
    "catch P.",
    "receive X -> X after 0 -> P end.",
    "fun lists:reverse/1, M = lists, fun M:reverse/1, P.",
    "fun helper/1.",
    "(fun(X) -> X end)(P).",
    "(fun F(0) -> P; F(N) -> F(N - 1) end)(1).",
    "\#r{a = P}.",
    "R = 1, R\#r{a = P}.",
    "R = 1, R\#r.a.",
    "\#r.a.",
    "\#r{a = X} = P.",
    "maybe {ok, X} ?= {ok, P}, X else _ -> ok end.",
    "maybe P end.",
    "\#m:r{a = P}.",
    "\#_{a = P}.",
    "{a, X} = {a, P}.",
    "[H \| T] = [P].",
    ~S|"ab" ++ X = "abc", P.|,
    "<<A:8, B/binary>> = <<1, 2>>, P.",
    "\#{a := V} = \#{a => P}.",
    "-1 = -1, P.",
    "<<X:(1 + 1)>> = <<1:2>>, P."
  ]

  setup_all do
    Sentinels.start_canary()
    Sentinels.reset()
    on_exit(&Sentinels.reset/0)
  end

  defp reserved(w), do: :erl_scan.reserved_word(w) or w in [:maybe, :else]

  defp parse(source) do
    {:ok, tokens, _} =
      :erl_scan.string(String.to_charlist(source), 1, reserved_word_fun: &reserved/1)

    case :erl_parse.parse_exprs(tokens) do
      {:ok, exprs} -> {:ok, exprs}
      {:error, _} -> :unsupported
    end
  end

  defp with_payload(entry), do: String.replace(entry, "P", @payload)

  # {tag, size} of every tuple node in a term.
  defp node_types(t) when is_tuple(t) and tuple_size(t) > 0 and is_atom(elem(t, 0)),
    do: [{elem(t, 0), tuple_size(t)} | node_types(Tuple.to_list(t))]

  defp node_types(t) when is_tuple(t), do: node_types(Tuple.to_list(t))
  defp node_types(l) when is_list(l), do: Enum.flat_map(l, &node_types/1)
  defp node_types(_), do: []

  # The tuple node types reachable from `erl_parse:abstract_expr()`.
  defp grammar_node_types do
    {:ok, {_, [abstract_code: {:raw_abstract_v1, forms}]}} =
      :beam_lib.chunks(:code.which(:erl_parse), [:abstract_code])

    types = for {:attribute, _, :type, {name, def, _}} <- forms, into: %{}, do: {name, def}
    reach([:abstract_expr], types, MapSet.new(), MapSet.new())
  end

  defp reach([], _types, _seen, acc), do: acc

  defp reach([name | rest], types, seen, acc) do
    if name in seen do
      reach(rest, types, seen, acc)
    else
      {refs, acc} = collect(Map.fetch!(types, name), {[], acc})
      reach(refs ++ rest, types, MapSet.put(seen, name), acc)
    end
  end

  defp collect({:user_type, _, name, args}, {refs, acc}), do: collect(args, {[name | refs], acc})

  defp collect({:type, _, :tuple, [{:atom, _, tag} | _] = elems}, {refs, acc}),
    do: collect(elems, {refs, MapSet.put(acc, {tag, length(elems)})})

  defp collect(t, state) when is_tuple(t), do: collect(Tuple.to_list(t), state)
  defp collect(l, state) when is_list(l), do: Enum.reduce(l, state, &collect/2)
  defp collect(_, state), do: state

  defp parsed_corpus do
    for entry <- @corpus, {:ok, exprs} <- [parse(with_payload(entry))], do: {entry, exprs}
  end

  defp rewrite(exprs), do: :seccomp_rewrite.exprs(exprs, %{enter_markers: false})

  defp refused?({:error, {:seccomp_violation, _}}), do: true
  defp refused?({:error, {:unsafe_form, _, _}}), do: true
  defp refused?({:error, {:compile_error, _, _}}), do: true
  # Syntax the sandbox's own scanner does not enable (`maybe` before OTP 27).
  defp refused?({:error, {:syntax_error, _, _}}), do: true
  defp refused?(_), do: false

  # A remote fun value left in the rewritten code would escape the handler.
  defp raw_remote_funs(t) when is_tuple(t) do
    case t do
      {:fun, _, {:function, _, _, _}} -> [t]
      _ -> raw_remote_funs(Tuple.to_list(t))
    end
  end

  defp raw_remote_funs(l) when is_list(l), do: Enum.flat_map(l, &raw_remote_funs/1)
  defp raw_remote_funs(_), do: []

  test "the corpus covers every node type the running erl_parse declares or produces" do
    covered = parsed_corpus() |> Enum.flat_map(fn {_, exprs} -> node_types(exprs) end)
    # Declared but never produced by the parser (made by later passes, such as
    # OTP 29's native records): no source can reach the passes with them.
    missing = MapSet.difference(grammar_node_types(), MapSet.new(covered))

    for {tag, size} <- missing do
      node = List.to_tuple([tag, 1 | List.duplicate({:atom, 1, :x}, size - 2)])

      assert {:error, {:unsafe_form, _, _}} = rewrite([node]),
             "#{inspect(node)} is neither in the corpus nor refused"
    end
  end

  test "every corpus form is mediated or refused by the rewrite pass" do
    for {entry, exprs} <- parsed_corpus() do
      case rewrite(exprs) do
        {:ok, out} -> assert raw_remote_funs(out) == [], "unmediated fun in #{entry}"
        {:error, {:unsafe_form, _, _}} -> :ok
      end
    end
  end

  test "unknown forms, and known tags of unknown shape, are refused by both passes" do
    payload = {:call, 1, {:remote, 1, {:atom, 1, :os}, {:atom, 1, :getpid}}, []}

    unknown = [
      {:frobnicate, 1, payload},
      {:tuple, 1, payload, payload},
      {:lc, 1, payload, [{:frobnicate_generate, 1, {:var, 1, :X}, payload}]},
      {:lc, 1, payload, [{:zip, 1, [{:frobnicate, 1, payload}]}]},
      {:case, 1, payload, [{:frobnicate_clause, 1, [], [], [payload]}]},
      {:match, 1, {:frobnicate, 1, payload}, payload},
      [payload]
    ]

    for form <- unknown do
      assert {:error, {:unsafe_form, _, _}} = rewrite([form]), inspect(form)
    end

    policy = :seccomp_policy.native(elem(:seccomp_policy.new(%{mode: :blacklist}), 1))

    for form <- unknown do
      spec = %{
        module: :seccomp_syntax_probe,
        generation: 1,
        exprs: [form],
        inputs: [],
        policy: policy,
        optimize: false
      }

      assert {:error, {:unsafe_form, _, _}} = :seccomp_compile.module(spec), inspect(form)
    end
  end

  for backend <- Backends.all() do
    test "#{backend}: no corpus form runs the payload unchecked" do
      Sentinels.reset()

      for {entry, _} <- parsed_corpus() do
        result =
          Backends.run(unquote(backend), with_payload(entry), %{policy: :pure, timeout: 2000})

        assert Sentinels.changes() == [], "#{entry}: #{inspect(result)}"
        assert refused?(result), "#{entry} not refused: #{inspect(result)}"
      end
    end
  end
end
