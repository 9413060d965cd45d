defmodule Mix.Tasks.Seccomp.Shell do
  @shortdoc "Starts a restricted shell"
  @moduledoc """
  A shell whose every line runs in the beam_seccomp sandbox, keeping bindings.

      mix seccomp.shell [--policy FILE] [--profile pure|processes] [--timeout MS] [--erlang]
  """
  use Mix.Task

  @impl true
  def run(args) do
    {opts, _, _} =
      OptionParser.parse(args,
        strict: [policy: :string, profile: :string, timeout: :integer, erlang: :boolean]
      )

    Mix.Task.run("app.start")
    {:ok, erl_opts} = Seccomp.Eval.erlang_options(eval_options(opts))
    :seccomp_shell.start(erl_opts)
  end

  @doc false
  def eval_options(opts) do
    policy =
      case opts[:policy] do
        nil ->
          String.to_existing_atom(opts[:profile] || "pure")

        file ->
          case Seccomp.Policy.from_file(file) do
            {:ok, p} -> p
            {:error, reason} -> Mix.raise("cannot read #{file}: #{inspect(reason)}")
          end
      end

    [
      policy: policy,
      language: if(opts[:erlang], do: :erlang, else: :elixir),
      timeout: opts[:timeout] || 5000
    ]
  end
end
