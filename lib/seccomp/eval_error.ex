defmodule Seccomp.EvalError do
  @moduledoc """
  Raised by the bang functions of `Seccomp.Eval` when code is refused or
  cannot run: `:reason` is the error `Seccomp.Eval.eval/2` would return
  (`:timeout`, `{:compile_error, line, message}`, ...). Violations raise
  `Seccomp.ViolationError`, and exceptions of the code itself are re-raised.
  """
  defexception [:reason]

  @type t :: %__MODULE__{reason: term()}

  @impl true
  def message(%__MODULE__{reason: {kind, line, text}})
      when kind in [:syntax_error, :compile_error, :unsafe_form] and is_binary(text),
      do: "#{String.replace(Atom.to_string(kind), "_", " ")} on line #{line}: #{text}"

  def message(%__MODULE__{reason: reason}), do: "evaluation failed: #{inspect(reason)}"
end
