defmodule Seccomp.Test.Sentinels do
  @moduledoc false
  # Things an escape would change. Each attack below targets one of them; after
  # every attempt, all of them are checked.

  @file_path "/tmp/seccomp_pwned"
  @env "SECCOMP_PWNED"
  @pterm :seccomp_pwned
  @canary :seccomp_canary

  def file_path, do: @file_path
  def env, do: @env

  def start_canary do
    case Process.whereis(@canary) do
      nil ->
        pid = spawn(fn -> canary_loop() end)
        Process.register(pid, @canary)
        pid

      pid ->
        pid
    end
  end

  defp canary_loop do
    receive do
      {:peek, from} ->
        send(from, {:canary, Process.info(self(), :message_queue_len)})
        canary_loop()
    after
      :infinity -> :ok
    end
  end

  def reset do
    File.rm(@file_path)
    System.delete_env(@env)
    :persistent_term.erase(@pterm)
    Application.delete_env(:beam_seccomp, :pwned)
  end

  @doc "A list of what changed, empty when nothing did."
  def changes do
    canary = Process.whereis(@canary)

    queue =
      if canary do
        send(canary, {:peek, self()})
        receive(do: ({:canary, {:message_queue_len, n}} -> n))
      end

    [
      File.exists?(@file_path) && :file_written,
      System.get_env(@env) && :env_changed,
      :persistent_term.get(@pterm, nil) && :persistent_term_created,
      Application.get_env(:beam_seccomp, :pwned) && :app_env_changed,
      :code.is_loaded(Pwned) != false && :module_created,
      canary == nil && :canary_died,
      queue not in [0, nil] && :canary_got_message,
      not Process.alive?(Process.whereis(:init)) && :node_down
    ]
    |> Enum.filter(& &1)
  end
end
