defmodule Seccomp.AppDependenciesTest do
  # Mix (Elixir 1.15+) and releases put only the declared applications on the
  # code path: every module the library calls must belong to an application
  # its .app lists. Derived from the compiled modules' imports.
  use ExUnit.Case, async: true

  # Applications a caller brings with it: Elixir for the Elixir API, Mix for
  # the mix tasks (which only run under Mix).
  @host_apps %{elixir: :all, mix: ~r/^Elixir\.Mix\.Tasks\./}

  # The application a module belongs to: from the loaded applications, else
  # from where its code is (lib/APP-VSN/ebin).
  defp app_of(module) do
    with :undefined <- :application.get_application(module),
         path when is_list(path) <- :code.which(module) do
      path
      |> Path.dirname()
      |> Path.dirname()
      |> Path.basename()
      |> String.replace(~r/-[\d.]+$/, "")
      |> String.to_atom()
    else
      {:ok, app} -> app
      other -> other
    end
  end

  test "every application the library calls into is declared in its .app" do
    {:ok, modules} = :application.get_key(:beam_seccomp, :modules)
    {:ok, declared} = :application.get_key(:beam_seccomp, :applications)
    own = MapSet.new(modules)

    undeclared =
      for module <- modules,
          {:ok, {_, [imports: imports]}} = :beam_lib.chunks(:code.which(module), [:imports]),
          callee <- imports |> Enum.map(&elem(&1, 0)) |> Enum.uniq(),
          callee not in own,
          app = app_of(callee),
          app not in [:erts, :preloaded | declared],
          not host_app?(app, module),
          uniq: true,
          do: {app, callee, module}

    assert undeclared == [],
           "called but not in the .app's applications: #{inspect(undeclared, pretty: true)}"
  end

  defp host_app?(app, caller) do
    case @host_apps[app] do
      :all -> true
      %Regex{} = callers -> Atom.to_string(caller) =~ callers
      nil -> false
    end
  end
end
