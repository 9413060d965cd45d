defmodule Seccomp.LogOrderTest do
  # What a sandbox logs meets the library's log filter before any other
  # primary filter, translator, handler or formatter, whatever starts
  # later: Elixir's Logger started after the library (its translator is a
  # primary filter from Elixir 1.15), and a host filter added afterwards,
  # even while a sandbox runs. In a peer VM of its own: a regression would
  # let the translator run what a forged stack names.
  use ExUnit.Case, async: false
  @moduletag :capture_log
  @moduletag timeout: 300_000

  # A host's own primary filter: it records every event it is shown.
  @recorder ~S"""
  defmodule Seccomp.LogOrderTest.Recorder do
    def start, do: Agent.start(fn -> [] end, name: __MODULE__)
    def filter(event, _), do: (Agent.update(__MODULE__, &[event | &1]); :ignore)
    def add(id), do: :logger.add_primary_filter(id, {&__MODULE__.filter/2, []})
    def seen, do: Agent.get(__MODULE__, & &1)
  end
  """

  defp forged(reason),
    do:
      ":erlang.raise(:error, #{reason}, [{:m, :f, 0, [error_info: %{module: :sys, function: :terminate}]}])"

  # {code, language, options}: a crash whose report names `sys:terminate/2`
  # of the victim (or of the kernel's supervisor) in a forged stack.
  defp cases do
    [
      {forged(":log_order_victim"), :elixir, []},
      {"spawn(fn -> #{forged(":log_order_victim")} end); Process.sleep(100)", :elixir,
       [policy: :processes]},
      {"Task.start(fn -> #{forged(":kernel_sup")} end); Process.sleep(100)", :elixir,
       [policy: :processes]},
      {~S|spawn(fun() -> erlang:raise(error, log_order_victim, [{m, f, 0, [{error_info, #{module => sys, function => terminate}}]}]) end), timer:sleep(100), ok.|,
       :erlang, [policy: :processes]}
    ]
  end

  setup_all do
    # The usual order in a Mix project: the library first, Logger later.
    peer = Seccomp.Test.PeerVM.start([:beam_seccomp, :elixir, :logger])
    [{mod, _}] = :peer.call(peer, Code, :compile_string, [@recorder])
    {:ok, _} = :peer.call(peer, mod, :start, [])
    %{peer: peer, recorder: mod}
  end

  defp first_filter?(peer), do: :peer.call(peer, :seccomp_log_filter, :is_first, [])

  defp victim(peer), do: Seccomp.Test.PeerVM.victim(peer, :log_order_victim)

  # A process of the peer that evaluates, or runs prepared, `code`.
  defp start(peer, :eval, code, opts),
    do: {:peer.call(peer, :erlang, :spawn, [:seccomp_eval, :eval, [code, opts]]), nil}

  defp start(peer, mode, code, opts) do
    {:ok, p} = :peer.call(peer, :seccomp_eval, :prepare, [code, [mode: mode] ++ opts])
    {:peer.call(peer, :erlang, :spawn, [:seccomp_eval, :run, [p, []]]), p}
  end

  test "the filter goes back to the front when filters are added or replaced", %{
    peer: peer,
    recorder: rec
  } do
    # Elixir's Logger started after the library.
    assert Seccomp.Test.Wait.eventually(fn -> first_filter?(peer) end, 100)
    :ok = :peer.call(peer, rec, :add, [:log_order_host_first])
    assert Seccomp.Test.Wait.eventually(fn -> first_filter?(peer) end, 100)
    # A host that rewrites the list without it.
    :ok = :peer.call(peer, :logger, :set_primary_config, [:filters, []])
    assert Seccomp.Test.Wait.eventually(fn -> first_filter?(peer) end, 100)
    _ = :peer.call(peer, :logger, :remove_primary_filter, [:log_order_host_first])
  end

  # In caller mode sandboxed code runs in the caller's process, whose log
  # events the filter cannot tell from the caller's own: no logging module
  # may be called from sandboxed code, under any policy, in any mode.
  test "sandboxed code calls no logging module, whatever the policy" do
    denylist = %{mode: :blacklist, rules: [:os, :file, File, System, Code, :code]}

    for code <- [
          ~s|:logger.error(%{label: {:proc_lib, :crash}, report: [[error_info: :x]]})|,
          ~s|:logger.log(:error, ~c"x~p", [1])|,
          ~s|:logger.macro_log(%{}, :error, ~c"x", [])|,
          ~s|:logger.update_process_metadata(%{forged: 1})|,
          ~s|:error_logger.error_report(:x)|,
          ~s|Logger.metadata(forged: 1)|,
          ~s|Logger.bare_log(:error, "x")|
        ],
        mode <- [:eval, :pool, :caller] do
      result =
        if mode == :eval do
          :seccomp_eval.eval(code, language: :elixir, policy: denylist)
        else
          {:ok, p} = :seccomp_eval.prepare(code, language: :elixir, policy: denylist, mode: mode)
          result = :seccomp_eval.run(p, [])
          :seccomp_eval.release(p)
          result
        end

      assert {:error, {:seccomp_violation, {m, _, _}}} = result, "#{mode}: #{code}"
      assert :seccomp_log_modules.is_member(m)
    end

    # Nothing the sandbox set stays in the caller.
    refute Map.has_key?(Map.new(Logger.metadata()), :forged)

    # Every function of every such module, as the profiles' handler sees it.
    for m <- :seccomp_log_modules.modules(), {f, a} <- m.module_info(:exports) do
      assert :seccomp_profiles.kind(m, f, a) == :refused, "#{m}.#{f}/#{a}"
    end

    assert :logger in :seccomp_log_modules.modules()
    assert Logger in :seccomp_log_modules.modules()
  end

  test "no other filter, translator or handler is shown a sandbox's data", %{
    peer: peer,
    recorder: rec
  } do
    for {{code, lang, opts}, i} <- Enum.with_index(cases()), mode <- [:eval, :pool, :caller] do
      victim = victim(peer)
      # A host filter added while the sandbox runs, before it crashes.
      id = :"log_order_host_#{i}_#{mode}"
      delayed = "receive do after 200 -> :ok end; #{code}"
      code = if lang == :elixir, do: delayed, else: "receive after 200 -> ok end, " <> code
      {runner, prepared} = start(peer, mode, code, [language: lang] ++ opts)
      :ok = :peer.call(peer, rec, :add, [id])

      assert Seccomp.Test.Wait.eventually(
               fn -> not :peer.call(peer, :erlang, :is_process_alive, [runner]) end,
               500
             )

      # The VM's own crash report reaches the logger after the process ended.
      Process.sleep(150)
      prepared && :peer.call(peer, :seccomp_eval, :release, [prepared])
      where = "#{lang} #{mode}: #{code}"
      assert :peer.call(peer, :erlang, :is_process_alive, [victim]), "#{where}: victim killed"
      assert :peer.call(peer, :erlang, :whereis, [:kernel_sup]) != :undefined, "#{where}"
      :ok = :peer.call(peer, :logger, :remove_primary_filter, [id])
    end

    seen = :peer.call(peer, rec, :seen, [])
    withheld = Enum.filter(seen, &(inspect(&1.msg) =~ "log event withheld"))
    # The sandboxes' crashes were logged, and only as the inert line.
    assert withheld != []
    # Their metadata is the logger's own: no report callback, nothing the sandbox set.
    for event <- withheld, do: assert(Map.keys(event.meta) -- [:time, :pid, :gl] == [])

    for event <- seen do
      text = inspect(event, limit: :infinity)
      refute text =~ "error_info", text
    end
  end
end
