defmodule Seccomp do
  @moduledoc """
  seccomp for the BEAM: restrict what a process may call.

  A process carries layers of policy (`Seccomp.Policy`). Every call made
  through a mediated entry point — `apply/3`, the spawn family, the
  `Seccomp.Eval` sandbox, rpc — must be allowed by every layer. Layers are
  added, never removed, and children spawned through these functions inherit
  them, like Linux seccomp filters.

      policy = Seccomp.Policy.new!(allow: [Enum, String])
      :ok = Seccomp.restrict(policy)
      Seccomp.apply(String, :upcase, ["ok"])   #=> "OK"
      Seccomp.apply(File, :read!, ["/etc/passwd"])
      #=> ** (Seccomp.ViolationError) File.read!/1 is not allowed by the seccomp policy

  Functions that can be refused raise `Seccomp.ViolationError` here; the
  Erlang API (`:seccomp`) raises the error term `{:seccomp_violation, mfa}`.
  Bad input follows the result's shape: functions with tagged results
  (`restrict/1`, `status/1`, `Seccomp.Policy.new/1`, `Seccomp.Eval.eval/2`)
  return `{:error, reason}`, and their bang variants raise; functions that
  return a plain value (`apply/3`, the spawn family, `check/1`,
  `child_spec/2`) raise `ArgumentError`.
  """

  @type policy :: Seccomp.Policy.t() | :seccomp_policy.t() | keyword() | map()
  @type verdict :: :allow | {:deny, Seccomp.Policy.action()}

  @doc "Add a layer to the calling process. There is no way back."
  @spec restrict(policy()) :: :ok | {:error, term()}
  def restrict(policy), do: with_native(policy, &:seccomp.restrict/1)

  @doc "Add a layer to another local process; only an unrestricted caller may (`{:error, :not_permitted}`)."
  @spec restrict(pid(), policy()) :: :ok | {:error, term()}
  def restrict(pid, policy), do: with_native(policy, &:seccomp.restrict(pid, &1))

  defp with_native(policy, fun) do
    with {:ok, native} <- Seccomp.Policy.native(policy), do: fun.(native)
  end

  @doc "What the calling process's layers say about `{module, function, arity}`."
  @spec check(mfa()) :: verdict()
  defdelegate check(mfa), to: :seccomp

  @doc "What `pid`'s layers say about `{module, function, arity}`."
  @spec check(pid(), mfa()) :: verdict()
  defdelegate check(pid, mfa), to: :seccomp

  @doc """
  Apply `module.function(args...)` if the caller's policy allows it.

  On a violation, the action decides: `:error` raises
  `Seccomp.ViolationError`, `:kill` kills the caller, `:log` records and
  proceeds, `{:trap, broker}` asks the broker.
  """
  @spec apply(module(), atom(), [term()]) :: term()
  def apply(module, function, args), do: refusing(fn -> :seccomp.apply(module, function, args) end)

  @doc "`Kernel.spawn/1` that honours `no_spawn` and passes the caller's layers on."
  @spec spawn((() -> term())) :: pid()
  def spawn(fun), do: refusing(fn -> :seccomp.spawn(fun) end)

  @doc "`Kernel.spawn/3`, checked as a call of `module.function/length(args)` and as a spawn."
  @spec spawn(module(), atom(), [term()]) :: pid()
  def spawn(module, function, args),
    do: refusing(fn -> :seccomp.spawn(module, function, args) end)

  @doc "Like `spawn/1`, linked."
  @spec spawn_link((() -> term())) :: pid()
  def spawn_link(fun), do: refusing(fn -> :seccomp.spawn_link(fun) end)

  @doc "Like `spawn/3`, linked."
  @spec spawn_link(module(), atom(), [term()]) :: pid()
  def spawn_link(module, function, args),
    do: refusing(fn -> :seccomp.spawn_link(module, function, args) end)

  @doc "Like `spawn/1`, monitored."
  @spec spawn_monitor((() -> term())) :: {pid(), reference()}
  def spawn_monitor(fun), do: refusing(fn -> :seccomp.spawn_monitor(fun) end)

  @doc "Like `spawn/3`, monitored."
  @spec spawn_monitor(module(), atom(), [term()]) :: {pid(), reference()}
  def spawn_monitor(module, function, args),
    do: refusing(fn -> :seccomp.spawn_monitor(module, function, args) end)

  @doc "Like `:erlang.spawn_opt/2`, inheriting."
  @spec spawn_opt((() -> term()), list()) :: pid() | {pid(), reference()}
  def spawn_opt(fun, opts), do: refusing(fn -> :seccomp.spawn_opt(fun, opts) end)

  @doc """
  The restriction state of a local process: `:mode` (`:disabled` or
  `:filter`), `:layers`, `:no_spawn`, `:inherit`, `:checks`, `:denials` and
  `:tracer` (`:on` while its children inherit whatever starts them, `:off`
  when the trace flags were cleared from outside, `{:other, tracer}` when
  another tracer holds it).
  """
  @spec status(pid()) :: map() | {:error, term()}
  defdelegate status(pid), to: :seccomp

  @doc "How many processes are restricted."
  @spec table_size() :: non_neg_integer()
  defdelegate table_size(), to: :seccomp

  @doc """
  Receive `{:seccomp_event, event}` for every violation on this node. Only an
  unrestricted process may (`{:error, :not_permitted}`).
  """
  @spec subscribe() :: :ok | {:error, :not_started | :not_permitted}
  defdelegate subscribe(), to: :seccomp

  @doc "Stop receiving events."
  @spec unsubscribe() :: :ok | {:error, :not_started}
  defdelegate unsubscribe(), to: :seccomp

  @doc "Answer a `{:seccomp_trap, ref, pid, mfa}` question as a broker."
  @spec trap_reply(reference(), :allow | :deny) :: :ok
  defdelegate trap_reply(ref, answer), to: :seccomp

  @doc """
  A child spec whose child starts, and restarts, restricted by `policy`.

  Accepts what `Supervisor.child_spec/2` accepts (`MyWorker`, `{MyWorker, arg}`,
  maps). `policy` is a `Seccomp.Policy`, a policy keyword list, or
  `{:app_env, app, key}` / `{:file, path}`, read at every start.
  """
  @spec child_spec(Supervisor.child_spec() | module() | {module(), term()}, term()) ::
          Supervisor.child_spec()
  def child_spec(spec, policy) do
    spec |> Supervisor.child_spec([]) |> :seccomp.child_spec(policy_source(policy))
  end

  defp policy_source({:app_env, _, _} = source), do: source
  defp policy_source({:file, _} = source), do: source

  defp policy_source(policy) do
    case Seccomp.Policy.native(policy) do
      {:ok, native} -> native
      {:error, reason} -> raise ArgumentError, "invalid policy: #{inspect(reason)}"
    end
  end

  @doc """
  Start a child under a `Supervisor` or `DynamicSupervisor`; when the caller is
  restricted, the child carries at least the caller's layers.
  """
  @spec start_child(Supervisor.supervisor(), term()) :: DynamicSupervisor.on_start_child()
  def start_child(sup, spec) when is_list(spec),
    do: refusing(fn -> :seccomp.start_child(sup, spec) end)

  def start_child(sup, spec),
    do: refusing(fn -> :seccomp.start_child(sup, Supervisor.child_spec(spec, [])) end)

  @doc "`Task.Supervisor.start_child/2` with the caller's layers on the task."
  @spec task_start_child(Supervisor.supervisor(), (() -> term())) ::
          DynamicSupervisor.on_start_child()
  def task_start_child(sup, fun),
    do: refusing(fn -> :seccomp_supervisor.task(sup, fun, :start_child) end)

  @doc "`Task.Supervisor.async/2` with the caller's layers on the task."
  @spec task_async(Supervisor.supervisor(), (() -> term())) :: Task.t()
  def task_async(sup, fun), do: refusing(fn -> :seccomp_supervisor.task(sup, fun, :async) end)

  @doc "Every local process with its restriction state."
  @spec ps() :: [map()]
  defdelegate ps(), to: :seccomp

  @doc "A supervision tree with each child's restriction state."
  @spec tree(Supervisor.supervisor()) :: [map()]
  defdelegate tree(sup), to: :seccomp_supervisor

  @doc "`:rpc.call/4` that checks the caller's policy and runs under it on `node`."
  @spec rpc_call(node(), module(), atom(), [term()]) :: term()
  def rpc_call(node, module, function, args),
    do: refusing(fn -> :seccomp.rpc_call(node, module, function, args) end)

  @doc "`:rpc.call/5` that checks the caller's policy and runs under it on `node`."
  @spec rpc_call(node(), module(), atom(), [term()], timeout()) :: term()
  def rpc_call(node, module, function, args, timeout),
    do: refusing(fn -> :seccomp.rpc_call(node, module, function, args, timeout) end)

  @doc "`:rpc.cast/4` that checks the caller's policy and runs under it on `node`."
  @spec rpc_cast(node(), module(), atom(), [term()]) :: true
  def rpc_cast(node, module, function, args),
    do: refusing(fn -> :seccomp.rpc_cast(node, module, function, args) end)

  @doc "`:erpc.call/4` that checks the caller's policy and runs under it on `node`."
  @spec erpc_call(node(), module(), atom(), [term()]) :: term()
  def erpc_call(node, module, function, args),
    do: refusing(fn -> :seccomp.erpc_call(node, module, function, args) end)

  @doc "`:erpc.call/5` that checks the caller's policy and runs under it on `node`."
  @spec erpc_call(node(), module(), atom(), [term()], timeout()) :: term()
  def erpc_call(node, module, function, args, timeout),
    do: refusing(fn -> :seccomp.erpc_call(node, module, function, args, timeout) end)

  @doc "`Node.spawn/2`, the child restricted by the caller's layers."
  @spec spawn_on(node(), (() -> term())) :: pid()
  def spawn_on(node, fun), do: refusing(fn -> :seccomp.spawn(node, fun) end)

  @doc "`Node.spawn/4`, the child restricted by the caller's layers."
  @spec spawn_on(node(), module(), atom(), [term()]) :: pid()
  def spawn_on(node, module, function, args),
    do: refusing(fn -> :seccomp.spawn(node, module, function, args) end)

  @doc """
  Opt-in: every process `pid` spawns — also from compiled code such as `Task`,
  `GenServer.start` or a dependency — carries `pid`'s inheritable layers
  before it runs. Uses a tracer module on the process, so it cannot be combined
  with `:dbg` or another tracer on the same process.
  """
  @spec inherit_everywhere(pid()) :: :ok | {:error, term()}
  defdelegate inherit_everywhere(pid), to: :seccomp

  # The Erlang API's violation term as the Elixir exception.
  defp refusing(fun) do
    fun.()
  catch
    :error, {:seccomp_violation, mfa} ->
      reraise Seccomp.ViolationError, [mfa: mfa], __STACKTRACE__
  end
end
