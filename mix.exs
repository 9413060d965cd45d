defmodule Mix.Tasks.Compile.SeccompNif do
  @shortdoc "Builds the beam_seccomp NIF into priv/native/"
  @moduledoc """
  Runs `native/build.sh`: cargo decides whether the Rust sources changed and
  the library is copied into `priv/native/` only when it differs.
  """
  use Mix.Task.Compiler

  @impl true
  def run(_args) do
    script = Path.join(__DIR__, "native/build.sh")

    case System.cmd("sh", [script], stderr_to_stdout: true) do
      {_, 0} ->
        {:ok, []}

      {output, status} ->
        Mix.shell().error(output)
        Mix.raise("building the seccomp NIF failed (exit #{status}); is cargo installed?")
    end
  end
end

defmodule BeamSeccomp.MixProject do
  use Mix.Project

  def project do
    [
      app: :beam_seccomp,
      version: "0.1.0",
      elixir: "~> 1.14",
      compilers: [:seccomp_nif] ++ Mix.compilers(),
      erlc_paths: ["src"],
      erlc_options: [:debug_info, :warnings_as_errors],
      elixirc_options: [warnings_as_errors: true],
      start_permanent: false,
      deps: [],
      test_paths: ["test"],
      test_pattern: "*_test.exs",
      dialyzer: [],
      aliases: []
    ]
  end

  def application do
    [mod: {:beam_seccomp_app, []}, env: [trap_timeout: 5000], extra_applications: [:logger, :compiler, :syntax_tools]]
  end
end
