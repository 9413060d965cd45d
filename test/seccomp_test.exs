defmodule SeccompTest do
  use ExUnit.Case, async: true

  # Restrictions are per process and permanent: each test restricts a fresh one.
  defp in_process(fun) do
    task =
      Task.async(fn ->
        try do
          {:ok, fun.()}
        rescue
          e -> {:raised, e}
        end
      end)

    Task.await(task, 30_000)
  end

  defp violation(mfa), do: {:raised, %Seccomp.ViolationError{mfa: mfa}}

  describe "Seccomp.Policy" do
    test "allow: makes a whitelist and deny: a blacklist" do
      assert %Seccomp.Policy{mode: :whitelist, rules: [{String, :_, :_}]} =
               Seccomp.Policy.new!(allow: [String])

      assert %Seccomp.Policy{mode: :blacklist, rules: [{File, :_, :_}, {System, :cmd, :_}]} =
               Seccomp.Policy.new!(deny: [File, {System, :cmd, :_}])
    end

    test "deny: next to allow: carves exceptions out with the default action" do
      p = Seccomp.Policy.new!(allow: [String], deny: [{String, :to_atom, 1}], default_action: :kill)
      assert p.rules == [{String, :_, :_}, %{match: {String, :to_atom, 1}, action: :kill}]
    end

    test "errors name the offending element" do
      assert {:error, {:invalid_policy, {:rule, {String, :upcase}}}} =
               Seccomp.Policy.new(allow: [{String, :upcase}])

      assert {:error, {:invalid_policy, {:unknown_key, :colour}}} = Seccomp.Policy.new(colour: :red)
      assert {:error, {:invalid_policy, {:not_a_keyword_list, _}}} = Seccomp.Policy.new([1, 2])
      assert {:error, {:invalid_policy, {:not_a_keyword_list, "x"}}} = Seccomp.Policy.new("x")
      assert_raise ArgumentError, ~r/invalid policy/, fn -> Seccomp.Policy.new!(mode: :grey) end
    end

    test "inspect is readable" do
      p =
        Seccomp.Policy.new!(
          allow: [String, {Enum, :map, 2}, {:lists, :_, 1}],
          deny: [{String, :to_atom, :_}],
          no_spawn: true
        )

      assert inspect(p) ==
               "#Seccomp.Policy<whitelist, no_spawn, [String, Enum.map/2, :lists._/1, String.to_atom/_ => :error]>"
    end

    @tag :tmp_dir
    test "files round trip exactly, JSON and Erlang terms", %{tmp_dir: dir} do
      p =
        Seccomp.Policy.new!(
          deny: [File, %{match: {IO, :puts, 1}, action: :log}],
          default_action: {:trap, :my_broker},
          inherit: false
        )

      for name <- ["policy.json", "policy.config"] do
        path = Path.join(dir, name)
        assert :ok = Seccomp.Policy.to_file(p, path)
        assert {:ok, q} = Seccomp.Policy.from_file(path)
        assert Map.delete(q, :native) == Map.delete(p, :native)
      end

      File.write!(Path.join(dir, "broken.json"), ~s({"mode": 1}))

      assert {:error, {:invalid_json, msg}} =
               Seccomp.Policy.from_file(Path.join(dir, "broken.json"))

      assert msg =~ "line 1"
    end
  end

  describe "restrict, check and apply" do
    test "a whitelist denies everything else and raises a violation" do
      result =
        in_process(fn ->
          :ok = Seccomp.restrict(allow: [String, {Enum, :map, 2}])
          assert Seccomp.apply(String, :upcase, ["ok"]) == "OK"
          assert Seccomp.apply(Enum, :map, [[1], &(&1 + 1)]) == [2]
          assert Seccomp.check({File, :read, 1}) == {:deny, :error}
          Seccomp.apply(File, :read!, ["/etc/hostname"])
        end)

      assert result == violation({File, :read!, 1})
    end

    test "layers stack: the later layer cannot widen the earlier one" do
      in_process(fn ->
        :ok = Seccomp.restrict(allow: [String])
        :ok = Seccomp.restrict(allow: [String, File])
        assert Seccomp.check({File, :read, 1}) == {:deny, :error}
        assert Seccomp.check({String, :trim, 1}) == :allow
        assert %{mode: :filter, layers: [_, _]} = Seccomp.status(self())
      end)
    end

    test "a restricted process cannot restrict others, an unrestricted one can" do
      victim = spawn(fn -> Process.sleep(:infinity) end)
      on_exit(fn -> Process.exit(victim, :kill) end)

      in_process(fn ->
        :ok = Seccomp.restrict(deny: [System])
        assert Seccomp.restrict(victim, allow: []) == {:error, :not_permitted}
      end)

      assert Seccomp.status(victim).mode == :disabled
      assert :ok = Seccomp.restrict(victim, allow: [])
      assert Seccomp.check(victim, {String, :upcase, 1}) == {:deny, :error}
    end

    test "children inherit through every spawn variant" do
      verdicts =
        in_process(fn ->
          :ok = Seccomp.restrict(deny: [System])
          parent = self()
          report = fn -> send(parent, {:child, self(), Seccomp.check({System, :cmd, 2})}) end
          {pm, _} = Seccomp.spawn_monitor(report)

          pids = [
            Seccomp.spawn(report),
            Seccomp.spawn_link(report),
            pm,
            Seccomp.spawn_opt(report, [:link]),
            Seccomp.spawn(Kernel, :apply, [report, []])
          ]

          for pid <- pids, do: receive(do: ({:child, ^pid, v} -> v))
        end)

      assert verdicts == {:ok, List.duplicate({:deny, :error}, 5)}
    end

    test "violations are events" do
      :ok = Seccomp.subscribe()

      {:raised, _} =
        in_process(fn -> Seccomp.restrict(allow: []) && Seccomp.apply(:os, :getpid, []) end)

      assert_receive {:seccomp_event, %{mfa: {:os, :getpid, 0}, action: :error, outcome: :denied}}
      :ok = Seccomp.unsubscribe()
    end
  end

  describe "the table" do
    test "many processes check concurrently and each sees its own policy" do
      tasks =
        for i <- 1..200 do
          Task.async(fn ->
            allowed = if rem(i, 2) == 0, do: [String], else: [Enum]
            :ok = Seccomp.restrict(allow: allowed)

            for _ <- 1..2000, reduce: true do
              ok ->
                ok and
                  Seccomp.check({String, :upcase, 1}) ==
                    if rem(i, 2) == 0, do: :allow, else: {:deny, :error}
            end
          end)
        end

      assert Enum.all?(Task.await_many(tasks, 60_000))
    end
  end
end
