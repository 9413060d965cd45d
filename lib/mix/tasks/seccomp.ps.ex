defmodule Mix.Tasks.Seccomp.Ps do
  @shortdoc "Lists restricted processes of the running application"
  @moduledoc """
  Starts the application and prints every restricted process with its layer
  count and check/denial counters, like the `Seccomp:` line of `/proc/PID/status`.

      mix seccomp.ps
  """
  use Mix.Task

  @impl true
  def run(_args) do
    Mix.Task.run("app.start")
    :seccomp_supervisor.print_ps()
  end
end
