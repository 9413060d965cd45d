defmodule Seccomp.Policy do
  @moduledoc """
  An immutable, validated and compiled policy.

  Build one with `new/1`:

      {:ok, policy} = Seccomp.Policy.new(allow: [Enum, String, {:erlang, :+, 2}])
      {:ok, policy} = Seccomp.Policy.new(deny: [File, System, {:os, :cmd, :_}])

  Options:

    * `:allow` — patterns that are allowed; makes the policy a whitelist
      (everything else is denied).
    * `:deny` — patterns that are denied; on its own, makes the policy a
      blacklist (everything else is allowed). Next to `:allow`, it carves
      exceptions out of the allowed patterns.
    * `:mode` and `:rules` — the explicit form, as in `:seccomp.policy/1`; it
      does not mix with `:allow`/`:deny` (`{:conflicting_keys, keys}`).
    * `:no_spawn` (default `false`), `:inherit` (default `true`).
    * `:default_action` — `:error` (default), `:kill`, `:log` or `{:trap, broker}`.

  A pattern is a module (`String`), `{module, function, arity}` with `:_` as a
  wildcard for the function or the arity, or `%{match: pattern, action: action}`.
  """

  @enforce_keys [:native]
  defstruct [:mode, :rules, :no_spawn, :inherit, :default_action, :native]

  @type action :: :allow | :error | :kill | :log | {:trap, pid() | atom()}
  @type pattern :: module() | {module(), atom(), arity() | :_}
  @type t :: %__MODULE__{
          mode: :whitelist | :blacklist,
          rules: [pattern() | %{match: pattern(), action: action()}],
          no_spawn: boolean(),
          inherit: boolean(),
          default_action: action(),
          native: :seccomp_policy.t()
        }

  @doc "Validate and compile a policy; `{:error, {:invalid_policy, why}}` names the offending element."
  @spec new(keyword() | map() | t()) :: {:ok, t()} | {:error, term()}
  def new(%__MODULE__{} = policy), do: {:ok, policy}

  def new(opts) when is_list(opts) do
    if Keyword.keyword?(opts) do
      with {:ok, map} <- to_erlang_map(opts), do: new(map)
    else
      {:error, {:invalid_policy, {:not_a_keyword_list, opts}}}
    end
  end

  def new(map) when is_map(map) do
    with {:ok, native} <- :seccomp.policy(map), do: {:ok, from_native(native)}
  end

  def new(other), do: {:error, {:invalid_policy, {:not_a_keyword_list, other}}}

  @doc "Like `new/1`, but raises `ArgumentError` on an invalid policy."
  @spec new!(keyword() | map() | t()) :: t()
  def new!(opts) do
    case new(opts) do
      {:ok, policy} -> policy
      {:error, reason} -> raise ArgumentError, "invalid policy: #{inspect(reason)}"
    end
  end

  @doc "Wrap a policy built by the Erlang API."
  @spec from_native(:seccomp_policy.t()) :: t()
  def from_native(native) do
    spec = :seccomp_policy.spec(native)

    %__MODULE__{
      mode: spec.mode,
      rules: spec.rules,
      no_spawn: spec.no_spawn,
      inherit: spec.inherit,
      default_action: spec.default_action,
      native: native
    }
  end

  @doc "Write the policy to a file: JSON for `*.json`, Erlang terms otherwise."
  @spec to_file(t(), Path.t()) :: :ok | {:error, term()}
  def to_file(%__MODULE__{native: native}, path), do: :seccomp.policy_to_file(native, path)

  @doc "Read and validate a policy file."
  @spec from_file(Path.t()) :: {:ok, t()} | {:error, term()}
  def from_file(path) do
    with {:ok, native} <- :seccomp.policy_from_file(path), do: {:ok, from_native(native)}
  end

  @doc "The policy as JSON text."
  @spec to_json(t()) :: {:ok, binary()} | {:error, term()}
  def to_json(%__MODULE__{native: native}), do: :seccomp.policy_to_json(native)

  @doc "A policy from JSON text."
  @spec from_json(iodata()) :: {:ok, t()} | {:error, term()}
  def from_json(json) do
    with {:ok, native} <- :seccomp.policy_from_json(json), do: {:ok, from_native(native)}
  end

  @doc """
  Which escape-capable classes the policy grants: for each class
  (`:start_processes`, `:send_anywhere`, `:apply_data`, `:files`, `:os_commands`,
  `:ports`, `:code_loading`, `:ets`, `:atoms`, `:distribution`) the installed
  functions of it that the policy lets through, `[]` when the class is closed.
  """
  @spec capabilities(t() | keyword() | map()) :: {:ok, %{atom() => [mfa()]}} | {:error, term()}
  def capabilities(policy) do
    with {:ok, native} <- native(policy), do: :seccomp.capabilities(native)
  end

  @doc false
  @spec native(t() | :seccomp_policy.t() | keyword() | map()) ::
          {:ok, :seccomp_policy.t()} | {:error, term()}
  def native(%__MODULE__{native: native}), do: {:ok, native}

  def native(other) do
    if :seccomp_policy.is_policy(other) do
      {:ok, other}
    else
      with {:ok, %__MODULE__{native: native}} <- new(other), do: {:ok, native}
    end
  end

  @sugar [:allow, :deny]
  @explicit [:mode, :rules]

  defp to_erlang_map(opts) do
    {allow, deny} = {Keyword.get(opts, :allow), Keyword.get(opts, :deny)}
    base = opts |> Keyword.drop(@sugar) |> Map.new()
    default = Map.get(base, :default_action, :error)

    # `allow:`/`deny:` decide the mode and the rules: an explicit one as well
    # would be silently overridden, so the two forms do not mix.
    sugar = Enum.filter(@sugar, &Keyword.has_key?(opts, &1))
    explicit = Enum.filter(@explicit, &Keyword.has_key?(opts, &1))

    case {allow, deny} do
      _ when sugar != [] and explicit != [] ->
        {:error, {:invalid_policy, {:conflicting_keys, sugar ++ explicit}}}

      {nil, nil} ->
        {:ok, base}

      {nil, deny} ->
        {:ok, Map.merge(base, %{mode: :blacklist, rules: list(deny)})}

      {allow, nil} ->
        {:ok, Map.merge(base, %{mode: :whitelist, rules: list(allow)})}

      {allow, deny} ->
        # A denied pattern inside an allowed one: an explicit per-rule action.
        exceptions = Enum.map(list(deny), &%{match: &1, action: default})
        {:ok, Map.merge(base, %{mode: :whitelist, rules: list(allow) ++ exceptions})}
    end
  end

  defp list(patterns) when is_list(patterns), do: patterns
  defp list(other), do: other

  defimpl Inspect do
    import Inspect.Algebra

    def inspect(policy, opts) do
      flags =
        [
          policy.no_spawn && "no_spawn",
          not policy.inherit && "no_inherit",
          policy.default_action != :error &&
            "on violation: #{Kernel.inspect(policy.default_action)}"
        ]
        |> Enum.filter(& &1)

      rules = Enum.map(policy.rules, &rule/1)
      header = Enum.join(["#{policy.mode}" | flags], ", ")
      container_doc("#Seccomp.Policy<#{header}, [", rules, "]>", opts, fn r, _ -> r end)
    end

    defp rule(%{match: pattern, action: action}),
      do: "#{pattern(pattern)} => #{Kernel.inspect(action)}"

    defp rule(pattern), do: pattern(pattern)

    defp pattern({m, :_, :_}), do: Kernel.inspect(m)
    defp pattern({m, f, :_}), do: "#{Kernel.inspect(m)}.#{f}/_"
    defp pattern({m, :_, a}), do: "#{Kernel.inspect(m)}._/#{a}"
    defp pattern({m, f, a}), do: "#{Kernel.inspect(m)}.#{f}/#{a}"
  end
end
