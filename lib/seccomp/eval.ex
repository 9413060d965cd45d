defmodule Seccomp.Eval do
  @moduledoc """
  Evaluate user expressions (Elixir by default, or Erlang) in a sandbox.

      iex> Seccomp.Eval.eval("Enum.sum(1..10) * factor", bindings: [factor: 2])
      {:ok, 110, [factor: 2]}

      iex> Seccomp.Eval.eval(~s{File.read!("/etc/passwd")})
      {:error, {:seccomp_violation, {File, :read!, 1}}}

  Every call the code causes is checked against the sandbox policy: direct
  and dynamic calls, `apply`, funs handed to compiled code, messages, spawned
  processes. Processes run with heap, binary, reduction, process, atom and
  time limits, and everything the evaluation started is killed when it ends.

  ## Options

    * `:policy` — `:pure` (default: data functions only), `:processes` (pure
      plus processes and messages among the sandbox's own processes), a
      `Seccomp.Policy`, or a policy keyword list.
    * `:allow` / `:deny` — patterns that extend or narrow the policy.
    * `:language` — `:elixir` (default) or `:erlang`.
    * `:bindings` — variables the code can read; the result returns them updated.
    * `:timeout` (ms, default 5000), `:max_heap_size` (words per process,
      default 4,000,000), `:max_binary` (bytes, default 16 MB),
      `:max_reductions` (default 200,000,000), `:max_processes` (default 100),
      `:max_atoms` (new atoms, default 100).
    * `:output` — `:discard` (default), `:capture` (the text comes back as a
      fourth element of the result) or a pid that gets `{:seccomp_output, text}`;
      `:max_output` caps it (bytes, default 65,536).
    * `:send_to` — registered names or pids the code may send messages to.

  ## Errors

  `{:seccomp_violation, {m, f, arity}}`, `:timeout`, `:memory_limit`,
  `:reduction_limit`, `:process_limit`, `:atom_limit`,
  `{:syntax_error, line, message}`, `{:compile_error, line, message}`,
  `{:unsafe_form, line, message}` and `{:exception, kind, reason, message}`.
  """

  @type result ::
          {:ok, term(), keyword()} | {:ok, term(), keyword(), binary()} | {:error, term()}

  @doc "Evaluate `code` (a string or a quoted expression) under a policy and limits."
  @spec eval(String.t() | Macro.t(), keyword()) :: result()
  def eval(code, opts \\ []) do
    with {:ok, opts} <- erlang_options(opts), do: :seccomp_eval.eval(code, opts)
  end

  @doc false
  def erlang_options(opts) when is_list(opts) do
    if Keyword.keyword?(opts) do
      map = Map.new(opts)

      {:ok,
       map
       |> Map.put_new(:language, :elixir)
       |> Map.update(:policy, :pure, &policy/1)}
    else
      {:error, {:invalid_option, opts}}
    end
  end

  def erlang_options(other), do: {:error, {:invalid_option, other}}

  defp policy(%Seccomp.Policy{native: native}), do: native

  defp policy(opts) when is_list(opts) do
    case Seccomp.Policy.new(opts) do
      {:ok, %Seccomp.Policy{native: native}} -> native
      {:error, _} -> opts
    end
  end

  defp policy(other), do: other
end
