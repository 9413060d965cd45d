defmodule Mix.Tasks.Seccomp.Ps do
  @shortdoc "Lists restricted processes of the running application"
  @moduledoc """
  Starts the application and prints every restricted process with its layer
  count and check/denial counters, like the `Seccomp:` line of `/proc/PID/status`,
  then for each distinct policy the escape-capable classes it leaves open
  (`Seccomp.Policy.capabilities/1`).

      mix seccomp.ps
  """
  use Mix.Task

  @impl true
  def run(_args) do
    Mix.Task.run("app.start")
    :seccomp_supervisor.print_ps()
    :seccomp_supervisor.print_capabilities()
  end
end
