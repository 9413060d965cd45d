defmodule Seccomp.ViolationError do
  @moduledoc """
  Raised by the `Seccomp` and `Seccomp.Eval` functions when a policy refuses a
  call (action `:error`, or a broker that says no). `:mfa` is the refused
  `{module, function, arity}`.

  Erlang callers of `:seccomp` see the error term `{:seccomp_violation, mfa}`
  instead; `Seccomp.Eval.eval/2` and friends return it as
  `{:error, {:seccomp_violation, mfa}}`.
  """
  defexception [:mfa]

  @type t :: %__MODULE__{mfa: mfa()}

  @impl true
  def message(%__MODULE__{mfa: mfa}), do: "#{format_mfa(mfa)} is not allowed by the seccomp policy"

  @doc "`File.read!/1` for Elixir modules, `:os.cmd/1` for Erlang ones."
  @spec format_mfa(mfa()) :: String.t()
  def format_mfa({m, f, a}), do: Exception.format_mfa(m, f, a)
end
