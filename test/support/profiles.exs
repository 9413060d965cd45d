defmodule Seccomp.Test.Profiles do
  @moduledoc false
  # Which functions of a derived set the built-in profiles allow: the sets
  # that are refused or mediated whatever the policy must not take a
  # profile's own functions with them. Macros and compiler hooks
  # (`__escape__`) run at expansion, which is checked: left out.

  def named(mfas, profile) do
    {:ok, spec} = :seccomp_profiles.profile(profile)
    native = :seccomp_policy.native(elem(:seccomp_policy.new(spec), 1))

    for {m, f, a} <- mfas,
        :seccomp_nif.check_with(native, m, f, a) == :allow,
        not expansion_time?(f),
        do: {m, f, a}
  end

  def expansion_time?(name) do
    text = Atom.to_string(name)

    String.starts_with?(text, "MACRO-") or
      (String.starts_with?(text, "__") and String.ends_with?(text, "__"))
  end
end
