defmodule Seccomp.Test.Wait do
  @moduledoc false
  # Poll until a condition holds (processes die and monitors fire asynchronously).
  def eventually(fun, tries \\ 500) do
    cond do
      fun.() -> true
      tries == 0 -> false
      true -> Process.sleep(10) && eventually(fun, tries - 1)
    end
  end
end
