defmodule Seccomp.Test.PeerVM do
  @moduledoc false
  # Tests of inputs that would end the VM if a bound regressed run them in a
  # VM of their own: a peer with this VM's code path, the given applications
  # started in order, stopped when the suite ends.
  import ExUnit.Callbacks, only: [on_exit: 1]

  def start(apps, paths \\ :code.get_path(), emulator_args \\ []) do
    args = Enum.flat_map(paths, &[~c"-pa", &1]) ++ emulator_args
    {:ok, peer, _node} = :peer.start_link(%{connection: :standard_io, args: args})
    # (The peer may be gone already, or still up: neither is a failure.)
    on_exit(fn ->
      try do
        :peer.stop(peer)
      catch
        :exit, _ -> :ok
      end
    end)

    for app <- apps, do: {:ok, _} = :peer.call(peer, :application, :ensure_all_started, [app])
    peer
  end

  # A registered process of the peer's that a refused call would have hit.
  def victim(peer, name) do
    case :peer.call(peer, :erlang, :whereis, [name]) do
      :undefined ->
        pid = :peer.call(peer, :erlang, :spawn, [:timer, :sleep, [:infinity]])
        true = :peer.call(peer, :erlang, :register, [name, pid])
        pid

      pid ->
        pid
    end
  end
end
