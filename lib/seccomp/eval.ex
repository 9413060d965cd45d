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

  Code that runs again and again (a pricing rule, a transform) is better
  prepared once with `prepare/2` and run with `run/3`: the same checks and
  mediation, compiled, in warm sandbox processes or in the caller's own.

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
  `{:unsafe_form, line, message}` and `{:exception, kind, reason, message}`;
  `run/3` also `{:missing_binding, name}`. The bang functions (`eval!/2`,
  `prepare!/2`, `run!/3`) raise instead: `Seccomp.ViolationError`,
  `Seccomp.EvalError` or the code's own exception.
  """

  @typedoc "Prepared code (see `prepare/2`)."
  @type prepared :: :seccomp_prepare.prepared()

  @type result ::
          {:ok, term(), keyword()} | {:ok, term(), keyword(), binary()} | {:error, term()}

  @doc "Evaluate `code` (a string or a quoted expression) under a policy and limits."
  @spec eval(String.t() | Macro.t(), keyword()) :: result()
  def eval(code, opts \\ []) do
    with {:ok, opts} <- erlang_options(opts), do: :seccomp_eval.eval(code, opts)
  end

  @doc """
  Prepare `code` once to run it many times.

  The source goes through the same checks and mediation as `eval/2`, and is
  then compiled: calls the policy allows stay direct calls, everything that
  can only be decided at run time (variable modules, `apply`, funs, sends,
  spawns) is checked when it happens. Takes the options of `eval/2` plus:

    * `:mode` — `:pool` (default): runs go to warm sandbox processes with
      every limit of `eval/2`; `:caller`: runs stay in the caller's process,
      checked but without resource limits (see `run/3`).
    * `:pool_size` — warm processes (default: one per scheduler in pool mode,
      none in caller mode).
    * `:max_source` — the largest source accepted, in bytes (default 65,536).

  `:bindings` names the variables runs will pass (a keyword list, whose
  values are ignored, or a list of names). The prepared value is released
  when the process that prepared it exits, or by `release/1`. At most
  `max_prepared` (application environment, default 1000) exist at a time.

      iex> {:ok, rule} = Seccomp.Eval.prepare("price * qty", bindings: [:price, :qty])
      iex> Seccomp.Eval.run(rule, price: 3, qty: 4)
      {:ok, 12, [price: 3, qty: 4]}
  """
  @spec prepare(String.t() | Macro.t(), keyword()) :: {:ok, prepared()} | {:error, term()}
  def prepare(code, opts \\ []) do
    with {:ok, opts} <- erlang_options(opts), do: :seccomp_eval.prepare(code, opts)
  end

  @doc """
  Run prepared code with `bindings`; returns what `eval/2` would.

  Options: `:mode` (`:pool` or `:caller`, default: the prepared value's) and
  `:timeout` (ms, pool mode). In caller mode the code shares the caller's
  process: it may not receive messages, touch the process dictionary, trap
  exits, link, change process flags or start processes, and nothing limits
  its time or memory.
  """
  @spec run(prepared(), keyword(), keyword()) :: result()
  def run(prepared, bindings, opts \\ [])
  def run(prepared, bindings, []), do: :seccomp_eval.run(prepared, bindings)

  def run(prepared, bindings, opts) when is_list(opts),
    do: :seccomp_eval.run(prepared, bindings, Map.new(opts))

  @doc """
  Like `eval/2`, but returns the value alone and raises: `Seccomp.ViolationError`
  for a refused call, the code's own exception as it is, `Seccomp.EvalError`
  for the other errors.

      iex> Seccomp.Eval.eval!("Enum.sum(1..10)")
      55
  """
  @spec eval!(String.t() | Macro.t(), keyword()) :: term()
  def eval!(code, opts \\ []), do: code |> eval(opts) |> value!()

  @doc "Like `prepare/2`, but returns the prepared code and raises as `eval!/2` does."
  @spec prepare!(String.t() | Macro.t(), keyword()) :: prepared()
  def prepare!(code, opts \\ []) do
    case prepare(code, opts) do
      {:ok, prepared} -> prepared
      error -> value!(error)
    end
  end

  @doc "Like `run/3`, but returns the value alone and raises as `eval!/2` does."
  @spec run!(prepared(), keyword(), keyword()) :: term()
  def run!(prepared, bindings, opts \\ []), do: prepared |> run(bindings, opts) |> value!()

  defp value!({:ok, value, _bindings}), do: value
  defp value!({:ok, value, _bindings, _output}), do: value

  defp value!({:error, {:seccomp_violation, mfa}}),
    do: raise(Seccomp.ViolationError, mfa: mfa)

  defp value!({:error, {:exception, kind, reason, _message}}), do: :erlang.raise(kind, reason, [])
  defp value!({:error, reason}), do: raise(Seccomp.EvalError, reason: reason)

  @doc "Release prepared code: later runs return `{:error, :released}`."
  @spec release(prepared()) :: :ok | {:error, {:invalid_option, {:prepared, term()}}}
  def release(prepared), do: :seccomp_eval.release(prepared)

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
