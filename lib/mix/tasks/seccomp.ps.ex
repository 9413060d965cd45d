defmodule Mix.Tasks.Seccomp.Ps do
  @shortdoc "Lists the restricted processes of a running node"
  @moduledoc """
  Prints every restricted process of a running node with its layer count and
  check/denial counters, like the `Seccomp:` line of `/proc/PID/status`, then
  for each distinct policy the escape-capable classes it leaves open
  (`Seccomp.Policy.capabilities/1`).

      mix seccomp.ps --node NAME [--cookie COOKIE]

  Connects to `NAME` (short or long names, as `NAME` is written) with the
  given cookie, or the default one from `~/.erlang.cookie`. The node must run
  beam_seccomp and let this node call `:seccomp_supervisor.print_ps/0`.
  Without `--node` it lists the processes of this Mix VM.
  """
  use Mix.Task

  @usage "mix seccomp.ps [--node NAME] [--cookie COOKIE]"

  @impl true
  def run(args) do
    case OptionParser.parse(args, strict: [node: :string, cookie: :string]) do
      {opts, [], []} -> ps(opts[:node], opts[:cookie])
      _ -> Mix.raise("usage: #{@usage}")
    end
  end

  defp ps(nil, nil) do
    Mix.Task.run("app.start")
    :seccomp_supervisor.print_ps()
    :seccomp_supervisor.print_capabilities()
  end

  defp ps(nil, _cookie), do: Mix.raise("--cookie needs --node\nusage: #{@usage}")

  defp ps(name, cookie) do
    target = String.to_atom(name)
    start_distribution!(name)
    if cookie, do: Node.set_cookie(target, String.to_atom(cookie))

    Node.connect(target) ||
      Mix.raise("cannot connect to #{name}: is it running, and is the cookie right?")

    # The remote process writes to this process's group leader: the output is ours.
    try do
      :erpc.call(target, :seccomp_supervisor, :print_ps, [], 10_000)
    catch
      kind, reason ->
        Mix.raise("#{name} did not list its processes: #{Exception.format_banner(kind, reason)}")
    end
  end

  defp start_distribution!(name) do
    names = if name =~ ~r/@.*\./, do: :longnames, else: :shortnames
    me = :"seccomp_ps_#{System.unique_integer([:positive])}"

    case Node.start(me, names) do
      {:ok, _} -> :ok
      {:error, {:already_started, _}} -> :ok
      {:error, reason} -> Mix.raise("cannot start distribution: #{inspect(reason)}")
    end
  end
end
