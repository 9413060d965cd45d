defmodule Seccomp.HostStateTest do
  # The host's state stays out of a sandbox's reach whatever its policy:
  # what the VM's introspection built-ins tell (mailboxes, stacks, the
  # command line with the cookie), its console, ETS tables the sandbox did
  # not create, and, under a denylist, what servers do for their clients
  # (a `dets` table's process writes the files a sandbox names).
  use ExUnit.Case, async: false
  @moduletag :capture_log
  alias Seccomp.Test.Backends

  @readme_denylist %{mode: :blacklist, rules: [:os]}
  @broad_denylist %{
    mode: :blacklist,
    rules: [:os, :file, :code, :port, System, File, Port, Code]
  }
  @denylists [@readme_denylist, @broad_denylist]

  defp run(mode, code, policy, opts \\ %{}) do
    Backends.run(
      mode,
      code,
      Map.merge(%{language: :elixir, policy: policy, max_atoms: 1000}, opts)
    )
  end

  defp refused?({:error, {:seccomp_violation, {m, f, a}}})
       when is_atom(m) and is_atom(f) and is_integer(a),
       do: true

  defp refused?(_), do: false

  describe "introspection" do
    setup do
      # A host process that holds a secret in its mailbox and on its stack.
      secret = "HOST_MAILBOX_SECRET_#{System.unique_integer([:positive])}"

      holder =
        spawn(fn ->
          s = secret

          receive do
            :stop -> s
          end
        end)

      Process.register(holder, :seccomp_host_state_holder)
      send(holder, {:msg, secret})
      on_exit(fn -> send(holder, :stop) end)
      %{secret: secret, holder: holder}
    end

    test "built-ins that describe the host's processes, ports, code or command line are refused",
         %{secret: secret} do
      probes = [
        ~S|:erlang.system_info(:procs)|,
        ~S|:erlang.system_info(:info)|,
        ~S|:erlang.system_info(:emu_args)|,
        ~S|:erlang.system_info(:dist)|,
        ~S|:erlang.system_info(:loaded)|,
        ~S|:erlang.system_info(:allocated_areas)|,
        ~S|:erlang.system_info(:dist_ctrl)|,
        ~S|:erlang.system_info(:not_a_key_of_any_release)|,
        ~S|k = :procs; :erlang.system_info(k)|,
        ~S|apply(:erlang, :system_info, [:procs])|,
        ~S|Enum.map([:procs], &:erlang.system_info/1)|,
        ~S|:erlang.statistics(:scheduler_wall_time)|,
        ~S|:erlang.memory()|,
        ~S|:erlang.memory(:total)|,
        ~S|:erlang.processes()|,
        ~S|:erlang.ports()|,
        ~S|:erlang.registered()|,
        ~S|:erlang.port_info(hd(:erlang.ports()))|,
        ~S|Process.list()|,
        ~S|Process.registered()|,
        ~S|for p <- Process.list(), do: Process.info(p, :messages)|,
        ~S|Process.info(Process.whereis(:seccomp_host_state_holder), :messages)|,
        ~S|:c.memory()|
      ]

      for policy <- @denylists, code <- probes, mode <- Backends.all() do
        result = run(mode, code, policy)
        assert refused?(result), "#{mode}: #{code}: #{inspect(result, limit: 5)}"
        refute inspect(result, limit: :infinity, printable_limit: :infinity) =~ secret
      end
    end

    test "the named harmless keys still answer" do
      for {code, expected} <- [
            {~S|:erlang.system_info(:otp_release)|, :erlang.system_info(:otp_release)},
            {~S|:erlang.system_info(:wordsize)|, :erlang.system_info(:wordsize)},
            {~S|:erlang.system_info(:schedulers_online)|, :erlang.system_info(:schedulers_online)},
            {~S|is_tuple(:erlang.statistics(:runtime))|, true}
          ],
          policy <- @denylists,
          mode <- Backends.all() do
        assert {:ok, ^expected, _} = run(mode, code, policy), "#{mode}: #{code}"
      end
    end
  end

  describe "the VM's console" do
    # Every export of `erlang` whose name holds "display" writes past every
    # group leader, to the VM's own standard output or error.
    test "every console writer of erlang is refused, under a denylist and an allowlist naming erlang" do
      writers =
        for {f, a} <- :erlang.module_info(:exports),
            String.contains?(Atom.to_string(f), "display"),
            do: {f, a}

      assert {:process_display, 2} in writers
      assert {:display, 1} in writers

      for {f, a} <- writers,
          policy <- [
            @readme_denylist,
            @broad_denylist,
            %{mode: :whitelist, rules: [:erlang]}
          ],
          mode <- Backends.all() do
        args = Enum.map_join(List.duplicate("self()", a), ", ", & &1)
        code = ":erlang.#{f}(#{args})"
        result = run(mode, code, policy)

        assert {:error, {:seccomp_violation, {:erlang, ^f, ^a}}} = result,
               "#{mode}: #{code}: #{inspect(result)}"
      end
    end
  end

  describe "state the whole VM shares" do
    test "library functions that reach it are refused whatever the policy, and every host process still inspects" do
      # Derived from the call graph: every function that can reach a writer
      # of `persistent_term`, the applications and their environment,
      # logger's configuration or the VM's console.
      :ok = :seccomp_reach.ensure()
      {:ok, %{host_state: reaching}} = :seccomp_reach.derive()
      assert {Inspect.Opts, :default_inspect_fun, 1} in reaching
      assert {Calendar, :put_time_zone_database, 1} in reaching
      assert {:persistent_term, :put, 2} in reaching
      assert {:application_controller, :get_all_env, 1} in reaching
      assert {:c, :bt, 1} in reaching
      refute {:persistent_term, :get, 1} in reaching
      refute {Kernel, :inspect, 2} in reaching

      # The profiles' own functions stay out (a crash report or a log call
      # on the way is not a write): the only writer they name is the one
      # the set exists to catch.
      for profile <- [:pure, :processes] do
        named = Seccomp.Test.Profiles.named(reaching, profile)
        assert named == [{Inspect.Opts, :default_inspect_fun, 1}], "#{profile}: #{inspect(named)}"
      end

      for mfa <- [
            {Task, :async, 1},
            {Task, :start, 1},
            {Agent, :start_link, 1},
            {:logger, :error, 2}
          ] do
        refute mfa in reaching, "#{inspect(mfa)}"
      end

      probes = [
        ~S|Inspect.Opts.default_inspect_fun(fn t, o -> Inspect.inspect(t, o) end)|,
        ~S|Inspect.Opts.default_inspect_fun(&:erlang.max/2)|,
        ~S|Calendar.put_time_zone_database(Enum)|,
        ~S|:application_controller.get_env(:beam_seccomp, :host_state_probe)|,
        ~S|:application_controller.get_all_env(:beam_seccomp)|,
        ~S|:c.bt(self())|
      ]

      before = :persistent_term.get({Inspect.Opts, :inspect_fun}, :unset)

      for policy <- [
            :pure,
            %{mode: :whitelist, rules: [Inspect.Opts, Inspect, Calendar]} | @denylists
          ],
          mode <- Backends.all(),
          code <- probes do
        result = run(mode, code, policy)
        now = :persistent_term.get({Inspect.Opts, :inspect_fun}, :unset)
        # Restored before asserting: a foreign inspect fun breaks the report.
        now == before || restore_inspect_fun(before)
        assert now == before, "#{mode}: #{code}"
        assert refused?(result), "#{inspect(policy)} #{mode}: #{code}: #{inspect(result)}"
      end

      task = Task.async(fn -> inspect(%{a: 1}) end)
      assert Task.await(task) == "%{a: 1}"

      # Reading stays allowed.
      assert {:ok, "%{a: 1}", _} = run(:eval, ~S|inspect(%{a: 1})|, :pure)
    end
  end

  defp restore_inspect_fun(:unset), do: :persistent_term.erase({Inspect.Opts, :inspect_fun})
  defp restore_inspect_fun(fun), do: :persistent_term.put({Inspect.Opts, :inspect_fun}, fun)

  describe "the VM's names and identifiers" do
    test "a sandbox claims no name, joins no group and forges no pid, port or reference" do
      free = :"seccomp_host_state_free_#{System.unique_integer([:positive])}"
      {:ok, _} = :pg.start_link(:seccomp_host_state_pg)
      :ok = :pg.join(:seccomp_host_state_pg, :admins, self())
      timer = Process.send_after(self(), :host_tick, 60_000)
      ref_text = inspect(:erlang.ref_to_list(timer))

      probes = [
        # A free name: a host server started on demand would get the
        # sandbox's process.
        ~s|Process.register(self(), #{inspect(free)})|,
        ~s|:erlang.register(#{inspect(free)}, self())|,
        ~s|GenServer.start(Agent.Server, fn -> 1 end, name: #{inspect(free)})|,
        ~s|:gen_server.start({:local, #{inspect(free)}}, Agent.Server, fn -> 1 end, [])|,
        ~s|:ets.new(#{inspect(free)}, [:named_table, :public])|,
        # The VM's process groups.
        ~S|:pg.which_groups(:seccomp_host_state_pg)|,
        ~S|:pg.join(:seccomp_host_state_pg, :admins, self())|,
        ~S|:pg.get_members(:seccomp_host_state_pg, :admins)|,
        # Identifiers made of data name what the sandbox did not make.
        ~s|:erlang.cancel_timer(:erlang.list_to_ref(#{ref_text}))|,
        ~S|:erlang.list_to_pid(~c"<0.1.0>")|,
        ~S|:erlang.list_to_port(~c"#Port<0.1>")|,
        ~S|:erlang.binary_to_term(<<131, 88, 100, 0, 13, "nonode@nohost", 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0>>)|,
        # The runtime's internals: a caller's mailbox, memory off every heap,
        # the VM's one timer server.
        ~S|:prim_eval.receive(fn x -> x end, 0)|,
        ~S|:prim_buffer.new()|,
        ~S|:erts_internal.garbage_collect(:major)|,
        ~S|:timer.send_interval(1, self(), :tick)|
      ]

      for policy <- @denylists, mode <- Backends.all(), code <- probes do
        result = run(mode, code, policy)
        assert refused?(result), "#{inspect(policy)} #{mode}: #{code}: #{inspect(result)}"
      end

      assert Process.whereis(free) == nil
      assert :ets.whereis(free) == :undefined
      assert :pg.get_members(:seccomp_host_state_pg, :admins) == [self()]
      assert is_integer(Process.read_timer(timer))
      Process.cancel_timer(timer)

      # A caller-mode run leaves the caller's aliases alone.
      alias = :erlang.alias()

      for code <- [~S|:erlang.alias()|, ~S|:erlang.unalias(make_ref())|] do
        assert refused?(run(:caller, code, hd(@denylists))), code
      end

      send(alias, :still_active)
      assert_receive :still_active
    end
  end

  describe "a process the caller lists in send_to" do
    test "gets the code's messages, never a protocol message OTP would act on, nor a table" do
      {:ok, vault} = Agent.start(fn -> %{password: "hunter2"} end)
      Process.register(vault, :seccomp_host_state_vault)
      opts = %{send_to: [:seccomp_host_state_vault, vault], bindings: [to: vault]}

      probes = [
        ~S|send(:seccomp_host_state_vault, {:system, {self(), make_ref()}, :get_state})|,
        ~S|send(to, {:system, {self(), make_ref()}, :suspend})|,
        ~S|send(to, {:EXIT, self(), :shutdown})|,
        ~S|send(to, {:"$gen_call", {self(), make_ref()}, {:get, fn s -> s end}})|,
        ~S|send(to, {:io_request, self(), make_ref(), {:put_chars, :unicode, "x"}})|,
        ~S|send(to, {:tcp, :port, "data"})|,
        ~S|send(to, {:event, fn -> 1 end})|,
        ~S|:ets.new(:t, [{:heir, to, :gift}])|,
        # Sending is all send_to grants: not its group leader, not ours
        # (our output would be its messages), not a collection.
        ~S|Process.group_leader(to, self())|,
        ~S|:erlang.group_leader(self(), to)|,
        ~S|:erlang.group_leader(to, self())|,
        ~S|:erlang.garbage_collect(to)|
      ]

      for policy <- @denylists ++ [:processes], mode <- [:eval, :pool], code <- probes do
        result = run(mode, code, policy, opts)
        assert refused?(result), "#{inspect(policy)} #{mode}: #{code}: #{inspect(result)}"
      end

      # The code's own messages arrive, within what a run may hand the host.
      assert {:ok, {:event, 1}, _} = run(:eval, ~S|send(to, {:event, 1})|, :processes, opts)

      flood =
        ~S|l = Enum.to_list(1..20_000); f = fn f -> send(to, {:progress, l}); f.(f) end; f.(f)|

      assert {:error, :memory_limit} = run(:eval, flood, :processes, opts)
      {:message_queue_len, queued} = Process.info(vault, :message_queue_len)
      assert queued < 1_000
      assert Agent.get(vault, & &1) == %{password: "hunter2"}
      assert Process.info(vault, :group_leader) == {:group_leader, Process.group_leader()}
      refute_received {:"ETS-TRANSFER", _, _, _}
      Agent.stop(vault)
    end
  end

  describe "decompression" do
    test "is refused whatever the policy (its output has no bound its input sets)" do
      :ok = :seccomp_reach.ensure()
      {:ok, %{inflate: inflating}} = :seccomp_reach.derive()
      assert {:zlib, :gunzip, 1} in inflating
      assert {:zlib, :inflate, 2} in inflating
      assert {:zip, :unzip, 2} in inflating
      refute {:zlib, :gzip, 1} in inflating

      for profile <- [:pure, :processes] do
        assert Seccomp.Test.Profiles.named(inflating, profile) == [], "#{profile}"
      end

      probes = [
        ~S|:zlib.gunzip(:zlib.gzip("abc"))|,
        ~S|:zlib.uncompress(:zlib.compress("abc"))|,
        ~S|z = :zlib.open(); :zlib.inflateInit(z); :zlib.inflate(z, :zlib.compress("abc"))|,
        ~S|{:ok, {_, z}} = :zip.zip(~c"a", [{~c"a", "abc"}], [:memory]); :zip.unzip(z, [:memory])|
      ]

      for policy <- @denylists, mode <- Backends.all(), code <- probes do
        result = run(mode, code, policy)
        assert refused?(result), "#{inspect(policy)} #{mode}: #{code}: #{inspect(result)}"
      end

      # Compressing in one call stays open where the policy allows it; a
      # stream keeps the runtime's memory behind a small handle.
      assert {:ok, 23, _} = run(:eval, ~S|byte_size(:zlib.gzip("abc"))|, hd(@denylists))
      stream = ~S|z = :zlib.open(); :zlib.deflateInit(z)|
      assert refused?(run(:eval, stream, hd(@denylists)))
    end
  end

  describe "the sandbox's own tables" do
    test "a call that writes what its arguments do not bound is refused; other writes stop at the copy bound" do
      unbounded = [
        ~S|t = :ets.new(:t, []); :ets.insert(t, {1, [1]}); | <>
          ~S|:ets.select_replace(t, [{{:"$1", :"$2"}, [], [{{:"$1", {{:"$2", :"$2"}}}}]}])|,
        ~S|t = :ets.new(:t, []); :ets.init_table(t, fn _ -> :end_of_input end)|
      ]

      for policy <- @denylists, mode <- [:eval, :pool], code <- unbounded do
        result = run(mode, code, policy)
        assert refused?(result), "#{mode}: #{code}: #{inspect(result)}"
      end

      # A write other than insert, on a table that holds the bound.
      code =
        "t = :ets.new(:t, []); l = Enum.to_list(1..1000); " <>
          "for i <- 1..100_000, do: :ets.update_counter(t, i, 1, {i, 0, l})"

      assert {:error, :memory_limit} =
               run(:eval, code, @readme_denylist, %{max_binary: 1_000_000, timeout: 30_000})
    end
  end

  describe "tables the sandbox did not create" do
    test "library code is not handed a host table, by name or by reference" do
      Application.put_env(:beam_seccomp, :host_state_secret, "ENV_SECRET")
      path = "/tmp/seccomp_host_state_#{System.unique_integer([:positive])}"
      # `dets` named by an allowlist: its own files are the sandbox's
      # business, the host's tables are not.
      policy = %{mode: :whitelist, rules: [:dets, Enum, :ets, Kernel]}

      try do
        # Named tables of the running OTP (the application controller's
        # holds every application's environment).
        tables =
          Enum.filter([:ac_tab, :code_names, :global_names], &(:ets.whereis(&1) != :undefined))

        assert :ac_tab in tables

        for table <- Enum.map(tables, &inspect/1), mode <- [:eval, :pool] do
          code = """
          {:ok, d} = :dets.open_file(:copy, file: ~c"#{path}", type: :set)
          r = :dets.from_ets(d, #{table})
          :dets.close(d)
          r
          """

          result = run(mode, code, policy)
          assert {:error, {:seccomp_violation, {:dets, :from_ets, 2}}} = result, "#{mode}: #{table}"
          File.rm_rf!(path)
        end

        # The sandbox's own table may be copied.
        code = """
        t = :ets.new(:mine, [])
        :ets.insert(t, {1, 2})
        {:ok, d} = :dets.open_file(:copy, file: ~c"#{path}", type: :set)
        :ok = :dets.from_ets(d, t)
        r = :dets.lookup(d, 1)
        :dets.close(d)
        r
        """

        assert {:ok, [{1, 2}], _} = run(:eval, code, policy)
      after
        File.rm_rf!(path)
        Application.delete_env(:beam_seccomp, :host_state_secret)
      end
    end
  end

  describe "servers' work for a sandbox under a denylist" do
    setup do
      host = "/tmp/seccomp_host_state_host_#{System.unique_integer([:positive])}.dets"
      {:ok, _} = :dets.open_file(:seccomp_host_state_dets, file: String.to_charlist(host))
      :ok = :dets.insert(:seccomp_host_state_dets, {:role, :guest})

      on_exit(fn ->
        :dets.close(:seccomp_host_state_dets)
        File.rm_rf!(host)
      end)

      %{host: host}
    end

    test "library code that uses a table its own code names is refused" do
      :yes = :global.register_name(:seccomp_host_state_global, self())

      try do
        for policy <- @denylists,
            code <- [
              ~S|:global.registered_names()|,
              ~S|:global.whereis_name(:seccomp_host_state_global)|
            ],
            mode <- Backends.all() do
          result = run(mode, code, policy)
          assert refused?(result), "#{mode}: #{code}: #{inspect(result)}"
        end
      after
        :global.unregister_name(:seccomp_host_state_global)
      end
    end

    test "dets, disk_log and the table files of ets are refused, with no file written", %{
      host: host
    } do
      path = "/tmp/seccomp_host_state_#{System.unique_integer([:positive])}"

      probes = [
        ~s|:dets.open_file(:x, file: ~c"#{path}")|,
        ~s|:dets.open_file(:x, file: ~c"#{host}", access: :read)|,
        ~S|:dets.all()|,
        ~S|:dets.lookup(:seccomp_host_state_dets, :role)|,
        ~S|:dets.insert(:seccomp_host_state_dets, {:role, :admin})|,
        ~S|:dets.info(:seccomp_host_state_dets)|,
        ~S|t = :ets.new(:t, []); :ets.to_dets(t, :seccomp_host_state_dets)|,
        ~S|t = :ets.new(:t, []); :ets.from_dets(t, :seccomp_host_state_dets)|,
        ~s|t = :ets.new(:t, []); :ets.tab2file(t, ~c"#{path}")|,
        ~s|:ets.file2tab(~c"#{host}")|,
        ~s|:disk_log.open(name: :x, file: ~c"#{path}")|
      ]

      for policy <- @denylists, code <- probes, mode <- Backends.all() do
        result = run(mode, code, policy)
        assert refused?(result), "#{mode}: #{code}: #{inspect(result)}"
        refute File.exists?(path), "#{mode}: #{code} wrote #{path}"
      end

      assert :dets.lookup(:seccomp_host_state_dets, :role) == [role: :guest]
    end

    test "a server's callbacks are charged to the functions that request its work" do
      {:ok, policy} = :seccomp_policy.new(@readme_denylist)
      closure = MapSet.new(:seccomp_denylist.closure(:seccomp_policy.spec(policy)))

      # Requests to a server process that does file work in its callbacks.
      for mfa <- [
            {:dets, :open_file, 2},
            {:dets, :insert, 2},
            {:dets, :lookup, 2},
            {:dets, :all, 0},
            {:dets, :from_ets, 2},
            {:dets, :to_ets, 2},
            {:ets, :to_dets, 2},
            {:ets, :from_dets, 2},
            {Process, :list, 0},
            {Process, :registered, 0},
            # Tables their own code names: the host's.
            {:global, :registered_names, 0},
            {:global, :whereis_name, 1}
          ] do
        assert mfa in closure, "#{inspect(mfa)} not derived"
      end

      # Processes the sandbox starts and talks to stay open.
      for mfa <- [
            {Agent, :start_link, 1},
            {Agent, :get, 2},
            {Agent, :cast, 2},
            {GenServer, :call, 2},
            {GenServer, :cast, 2},
            {:gen_server, :cast, 2},
            {Supervisor, :start_link, 2}
          ] do
        refute mfa in closure, "#{inspect(mfa)} derived"
      end
    end
  end
end
