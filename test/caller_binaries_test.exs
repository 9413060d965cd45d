defmodule Seccomp.CallerBinariesTest do
  # A caller-mode run's heap limit does not count reference-counted
  # binaries: allocations each within max_binary, kept alive together, would
  # grow the caller's off-heap memory until the VM cannot allocate. A run
  # may hold at most a few max_binary of new binaries; past that it ends
  # with memory_limit and the caller lives on. Binaries the run drops, and
  # those the caller held before it, do not count.
  use ExUnit.Case, async: false
  @moduletag :capture_log
  alias Seccomp.Eval

  @mb 1_000_000
  @chunks 40
  @limits [max_binary: @mb, max_atoms: 10_000]

  # Each keeps @chunks binaries of about 1 MB alive at once, built by a
  # different allocation path; each returns only a count.
  @holders [
    {:elixir, "copy", ~S{length(Enum.map(1..n, fn _ -> :binary.copy(<<0>>, 1_000_000) end))}},
    {:elixir, "concatenation", ~S{length(Enum.map(1..n, fn i -> <<i::32>> <> chunk end))}},
    {:elixir, "bit syntax size", ~S{length(Enum.map(1..n, fn _ -> <<0::size(8_000_000)>> end))}},
    {:elixir, "flattener",
     ~S{length(Enum.map(1..n, fn _ -> :erlang.iolist_to_binary([chunk, "."]) end))}},
    {:erlang, "copy", ~S{length([binary:copy(<<0>>, 1000000) || _ <- lists:seq(1, N)]).}},
    {:erlang, "bit syntax size", ~S{length([<<0:S>> || S <- lists:duplicate(N, 8000000)]).}}
  ]

  defp run(lang, code, inputs) do
    bindings = if lang == :elixir, do: [:n, :chunk], else: [:N, :Chunk]
    {:ok, rule} = Eval.prepare(code, [language: lang, mode: :caller, bindings: bindings] ++ @limits)

    inputs =
      if lang == :elixir,
        do: inputs,
        else:
          Enum.map(inputs, fn {k, v} ->
            {k |> Atom.to_string() |> String.capitalize() |> String.to_atom(), v}
          end)

    result = Eval.run(rule, inputs, mode: :caller)
    :ok = Eval.release(rule)
    result
  end

  defp off_heap_bytes do
    {:binary, bins} = Process.info(self(), :binary)
    bins |> Enum.uniq_by(&elem(&1, 0)) |> Enum.map(&elem(&1, 1)) |> Enum.sum()
  end

  for {lang, path, code} <- @holders do
    test "#{lang}, #{path}: #{@chunks} live binaries of max_binary end the run with memory_limit" do
      chunk = :binary.copy(<<0>>, 900_000)
      assert {:error, :memory_limit} = run(unquote(lang), unquote(code), n: @chunks, chunk: chunk)
      # What the run built is garbage now: the caller holds no more than the
      # run's allowance (4 x max_binary) and the one that was refused.
      :erlang.garbage_collect()
      assert off_heap_bytes() < 2 * @mb
    end

    test "#{lang}, #{path}: a few live binaries are within the run's allowance" do
      chunk = :binary.copy(<<0>>, 900_000)
      assert {:ok, 2, _} = run(unquote(lang), unquote(code), n: 2, chunk: chunk)
    end
  end

  test "binaries the run drops and binaries the caller held before do not count" do
    held = for i <- 1..20, do: :binary.copy(<<i>>, @mb)

    code =
      ~S{Enum.reduce(1..n, 0, fn _, acc -> acc + byte_size(:binary.copy(<<0>>, 1_000_000)) end)}

    assert {:ok, total, _} = run(:elixir, code, n: @chunks, chunk: "")
    assert total == @chunks * @mb
    assert length(held) == 20
  end
end
