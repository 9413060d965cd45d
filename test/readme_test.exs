defmodule Seccomp.ReadmeTest do
  # The README's `iex>` examples run as doctests: each ```elixir block that
  # has them is one test, its lines evaluated in order with shared bindings.
  # (ExUnit's doctest_file/1 needs Elixir 1.15; this reads the same format.)
  use ExUnit.Case, async: true

  readme = Path.expand("../README.md", __DIR__)
  @external_resource readme

  blocks =
    ~r/```elixir\n(.*?)```/s
    |> Regex.scan(File.read!(readme), capture: :all_but_first)
    |> Enum.map(&hd/1)
    |> Enum.filter(&(&1 =~ ~r/^iex> /m))

  # [{code, expected_lines}] in order; `...>` continues the code.
  defp examples(block) do
    block
    |> String.split("\n")
    |> Enum.reduce([], fn
      "iex> " <> code, acc -> [{code, []} | acc]
      "...> " <> more, [{code, []} | rest] -> [{code <> "\n" <> more, []} | rest]
      "", acc -> acc
      line, [{code, expected} | rest] -> [{code, expected ++ [line]} | rest]
      _line, [] -> []
    end)
    |> Enum.reverse()
  end

  defp check({code, []}, binding), do: code |> Code.eval_string(binding) |> elem(1)

  defp check({code, ["** (" <> _ = raised]}, binding) do
    [_, module, message] = Regex.run(~r/^\*\* \(([\w.]+)\) (.*)$/, raised)

    error =
      try do
        Code.eval_string(code, binding)
        flunk("#{code} raised nothing, expected #{raised}")
      rescue
        e -> e
      end

    assert inspect(error.__struct__) == module, code
    assert Exception.message(error) == message, code
    binding
  end

  defp check({code, expected}, binding) do
    expected = Enum.join(expected, "\n")
    {value, binding} = Code.eval_string(code, binding)

    if String.starts_with?(expected, "#") do
      assert inspect(value) == expected, code
    else
      {wanted, _} = Code.eval_string(expected, binding)
      assert value == wanted, "#{code}\n  got:      #{inspect(value)}\n  expected: #{expected}"
    end

    binding
  end

  for {block, index} <- Enum.with_index(blocks) do
    test "README example block #{index + 1}" do
      # each block in a process of its own: examples may restrict it
      task =
        Task.async(fn ->
          unquote(block) |> examples() |> Enum.reduce([], &check/2)
          :ok
        end)

      assert Task.await(task, 50_000) == :ok
    end
  end

  test "the README has examples to run" do
    assert unquote(length(blocks)) >= 2
  end
end
