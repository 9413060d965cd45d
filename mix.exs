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
        # Mix links priv/ into _build before the compilers run; on the first
        # build of a clone or a dependency it did not exist yet.
        Mix.Project.build_structure()
        # The .app is made from the .app.src, which Mix does not watch.
        app = Path.join(Mix.Project.compile_path(), "beam_seccomp.app")

        if Mix.Utils.stale?([Path.join(__DIR__, "src/beam_seccomp.app.src")], [app]),
          do: File.rm(app)

        {:ok, []}

      {output, status} ->
        Mix.shell().error(output)
        Mix.raise("building the seccomp NIF failed (exit #{status}); is cargo installed?")
    end
  end
end

defmodule BeamSeccomp.MixProject do
  use Mix.Project

  # The application metadata has one source, the .app.src rebar3 uses as it is.
  @app_src Path.join(__DIR__, "src/beam_seccomp.app.src")
  @external_resource @app_src
  {:ok, [{:application, :beam_seccomp, app}]} = :file.consult(@app_src)
  @app app

  def project do
    [
      app: :beam_seccomp,
      version: to_string(@app[:vsn]),
      description: to_string(@app[:description]),
      # Tested on Elixir 1.14 to 1.20 with Erlang/OTP 25 to 29.
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
    [
      mod: @app[:mod],
      env: @app[:env],
      registered: @app[:registered],
      extra_applications: @app[:applications] -- [:kernel, :stdlib]
    ]
  end
end
