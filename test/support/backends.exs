defmodule Seccomp.Test.Backends do
  @moduledoc false
  # The ways to run sandboxed code: `eval`, and `prepare` + `run` in each mode.
  # Suites that must hold for all of them loop over `all/0`.

  def all, do: [:eval, :pool, :caller]

  # `opts` is an eval options map; runs pass its bindings.
  def run(:eval, code, opts), do: :seccomp_eval.eval(code, opts)

  def run(mode, code, opts) do
    case :seccomp_eval.prepare(code, Map.put(opts, :mode, mode)) do
      {:ok, prepared} ->
        try do
          :seccomp_eval.run(prepared, Map.get(opts, :bindings, []))
        after
          :ok = :seccomp_eval.release(prepared)
        end

      error ->
        error
    end
  end
end
