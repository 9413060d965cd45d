defmodule Seccomp.Test.Soak do
  @moduledoc false
  # Long-running counts: full under `make soak` (SECCOMP_SOAK=1), shortened in
  # `make test` so that the whole suite stays within minutes.

  @doc "The full count under `make soak`, the quick one otherwise."
  def count(full, quick) do
    if System.get_env("SECCOMP_SOAK") in ["1", "true"], do: full, else: quick
  end
end
