defmodule Mix.Tasks.Seccomp.Shell do
  @shortdoc "Starts a restricted shell"
  @moduledoc """
  A shell whose every line runs in the beam_seccomp sandbox, keeping bindings.
  An empty line does nothing; `q()` or end of input (Ctrl-D) quits.

      mix seccomp.shell [--policy FILE] [--profile pure|processes] [--timeout MS] [--erlang]
  """
  use Mix.Task

  @usage "mix seccomp.shell [--policy FILE] [--profile pure|processes] [--timeout MS] [--erlang]"
  @switches [policy: :string, profile: :string, timeout: :integer, erlang: :boolean]

  @impl true
  def run(args) do
    {opts, []} = parse!(args, 0, @usage)
    eval_opts = eval_options(opts)
    Mix.Task.run("app.start")
    {:ok, erl_opts} = Seccomp.Eval.erlang_options(eval_opts)
    :seccomp_shell.start(erl_opts)
  end

  @doc false
  # The sandbox options of a command line, or a usage error (Mix.Error).
  def parse!(args, positional, usage) do
    case OptionParser.parse(args, strict: @switches) do
      {opts, rest, []} when length(rest) == positional -> {opts, rest}
      {_, _, [{flag, _} | _]} -> Mix.raise("unknown or invalid option #{flag}\nusage: #{usage}")
      {_, _, []} -> Mix.raise("usage: #{usage}")
    end
  end

  @doc false
  def eval_options(opts) do
    [
      policy: policy(opts[:policy], opts[:profile]),
      language: if(opts[:erlang], do: :erlang, else: :elixir),
      timeout: opts[:timeout] || 5000
    ]
  end

  defp policy(nil, profile) do
    profiles = :seccomp_profiles.names()

    Enum.find(profiles, &(Atom.to_string(&1) == (profile || "pure"))) ||
      Mix.raise(
        "unknown profile #{inspect(profile)}; the profiles are: #{Enum.join(profiles, ", ")}"
      )
  end

  defp policy(file, nil) do
    case Seccomp.Policy.from_file(file) do
      {:ok, p} -> p
      {:error, reason} -> Mix.raise("cannot read #{file}: #{inspect(reason)}")
    end
  end

  defp policy(_file, _profile), do: Mix.raise("give --policy or --profile, not both")
end
