defmodule Mix.Tasks.Seccomp.Eval do
  @shortdoc "Evaluates an expression in the beam_seccomp sandbox"
  @moduledoc """
  Prints the value of an Elixir expression, or why it was refused.

      mix seccomp.eval "Enum.sum(1..10)" [--policy FILE] [--profile pure|processes] [--timeout MS] [--erlang]
  """
  use Mix.Task

  @usage ~s{mix seccomp.eval CODE [--policy FILE] [--profile pure|processes] [--timeout MS] [--erlang]}

  @impl true
  def run(args) do
    {opts, [code]} = Mix.Tasks.Seccomp.Shell.parse!(args, 1, @usage)
    eval_opts = Mix.Tasks.Seccomp.Shell.eval_options(opts)
    Mix.Task.run("app.start")

    case Seccomp.Eval.eval(code, eval_opts) do
      {:ok, value, _bindings} -> IO.puts(inspect(value))
      {:error, reason} -> Mix.raise("refused: #{inspect(reason)}")
    end
  end
end
