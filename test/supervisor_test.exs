defmodule Seccomp.SupervisorTest do
  use ExUnit.Case, async: false
  @moduletag :capture_log

  defmodule Worker do
    use GenServer
    def start_link(arg), do: GenServer.start_link(__MODULE__, arg)
    def init(arg), do: {:ok, arg}
    def handle_call(:check_os, _from, s), do: {:reply, Seccomp.check({:os, :cmd, 1}), s}
  end

  defmodule Machine do
    @behaviour :gen_statem
    def start_link(arg), do: :gen_statem.start_link(__MODULE__, arg, [])
    def callback_mode, do: :handle_event_function
    def init(arg), do: {:ok, :idle, arg}

    def handle_event({:call, from}, :check_os, _state, data),
      do: {:keep_state, data, [{:reply, from, Seccomp.check({:os, :cmd, 1})}]}
  end

  defmodule SofoSup do
    @behaviour :supervisor
    def start_link(policy), do: :supervisor.start_link(__MODULE__, policy)

    def init(policy) do
      template = %{id: :w, start: {Seccomp.SupervisorTest.Worker, :start_link, []}}
      {:ok, {%{strategy: :simple_one_for_one}, [:seccomp.child_spec(template, policy)]}}
    end
  end

  # Policies hold a native resource: build them at run time, not as attributes.
  @no_os [deny: [:os]]
  @strings_only [allow: [String]]

  defp restricted?(pid), do: Seccomp.status(pid).mode == :filter

  test "children carry their own capability sets, across every restart" do
    children = [
      Seccomp.child_spec(Supervisor.child_spec({Worker, :a}, id: :a), @no_os),
      Seccomp.child_spec(Supervisor.child_spec({Worker, :b}, id: :b), @strings_only),
      Supervisor.child_spec({Worker, :free}, id: :free)
    ]

    {:ok, sup} = Supervisor.start_link(children, strategy: :one_for_one, max_restarts: 100)
    pids = Map.new(Supervisor.which_children(sup), fn {id, pid, _, _} -> {id, pid} end)
    assert GenServer.call(pids.a, :check_os) == {:deny, :error}
    assert Seccomp.check(pids.b, {Enum, :map, 2}) == {:deny, :error}
    assert Seccomp.check(pids.a, {Enum, :map, 2}) == :allow
    refute restricted?(pids.free)

    for _ <- 1..10, reduce: pids.a do
      old ->
        ref = Process.monitor(old)
        Process.exit(old, :kill)
        assert_receive {:DOWN, ^ref, _, _, _}
        new = wait_for_child(sup, :a, old)
        assert restricted?(new)
        assert GenServer.call(new, :check_os) == {:deny, :error}
        new
    end
  end

  test "Task children are restricted before they run" do
    me = self()
    report = fn -> send(me, {:task, Seccomp.check({:os, :cmd, 1})}) end

    spec =
      Seccomp.child_spec(
        %{id: :t, start: {Task, :start_link, [report]}, restart: :temporary},
        @no_os
      )

    {:ok, _sup} = Supervisor.start_link([spec], strategy: :one_for_one)
    assert_receive {:task, {:deny, :error}}
  end

  test "simple_one_for_one and DynamicSupervisor children" do
    {:ok, dyn} = DynamicSupervisor.start_link(strategy: :one_for_one)
    {:ok, pid} = Seccomp.start_child(dyn, Seccomp.child_spec({Worker, 1}, @no_os))
    assert restricted?(pid)
  end

  test "simple_one_for_one templates and gen_statem and gen_event children" do
    {:ok, policy} = :seccomp.policy(%{mode: :blacklist, rules: [:os]})
    {:ok, sofo} = SofoSup.start_link(policy)
    {:ok, w1} = :supervisor.start_child(sofo, [:one])
    {:ok, w2} = :supervisor.start_child(sofo, [:two])
    assert GenServer.call(w1, :check_os) == {:deny, :error}
    assert GenServer.call(w2, :check_os) == {:deny, :error}

    children = [
      Seccomp.child_spec(%{id: :m, start: {Machine, :start_link, [nil]}}, @no_os),
      Seccomp.child_spec(%{id: :e, start: {:gen_event, :start_link, []}}, @no_os)
    ]

    {:ok, sup} = Supervisor.start_link(children, strategy: :one_for_one)
    ids = Map.new(Supervisor.which_children(sup), fn {id, pid, _, _} -> {id, pid} end)
    assert :gen_statem.call(ids.m, :check_os) == {:deny, :error}
    assert restricted?(ids.e)
  end

  test "policies from application env are read at every start" do
    Application.put_env(:beam_seccomp, :worker_policy, %{mode: :blacklist, rules: [:os]})
    spec = Seccomp.child_spec({Worker, :x}, {:app_env, :beam_seccomp, :worker_policy})
    {:ok, sup} = Supervisor.start_link([spec], strategy: :one_for_one)
    [{_, pid, _, _}] = Supervisor.which_children(sup)
    assert Seccomp.check(pid, {:os, :cmd, 1}) == {:deny, :error}
    assert Seccomp.check(pid, {:file, :read_file, 1}) == :allow

    # tighten without code changes: the next start picks it up
    Application.put_env(:beam_seccomp, :worker_policy, %{mode: :blacklist, rules: [:os, :file]})
    Process.exit(pid, :kill)
    new = wait_for_child(sup, Worker, pid)
    assert Seccomp.check(new, {:file, :read_file, 1}) == {:deny, :error}
  after
    Application.delete_env(:beam_seccomp, :worker_policy)
  end

  test "an invalid policy fails the child start with a clear reason, not the caller" do
    Process.flag(:trap_exit, true)
    spec = Seccomp.child_spec({Worker, :x}, {:app_env, :beam_seccomp, :missing_policy})

    assert {:error, {:shutdown, {:failed_to_start_child, Worker, reason}}} =
             Supervisor.start_link([spec], strategy: :one_for_one)

    assert reason == {:seccomp_policy, {:no_policy_in_app_env, :beam_seccomp, :missing_policy}}

    {:ok, dyn} = DynamicSupervisor.start_link(strategy: :one_for_one)
    bad = :seccomp.child_spec(Supervisor.child_spec({Worker, 1}, []), {:file, "/nonexistent.json"})

    assert {:error, {:seccomp_policy, {:file, "/nonexistent.json", :enoent}}} =
             Seccomp.start_child(dyn, bad)

    assert Process.alive?(dyn)
  end

  test "a literal policy is validated when the child spec is made, in Erlang as in Elixir" do
    spec = Supervisor.child_spec({Worker, 1}, [])

    assert_raise ErlangError, ~r/invalid_policy.*grey/, fn ->
      :seccomp.child_spec(spec, %{mode: :grey})
    end

    assert_raise ErlangError, ~r/invalid_policy.*not_a_list/, fn ->
      :seccomp.child_spec(spec, %{rules: :not_a_list})
    end

    assert_raise ArgumentError, fn -> Seccomp.child_spec(spec, mode: :grey) end
  end

  describe "bypass 1: a restricted process asks a supervisor for a worker" do
    setup do
      {:ok, dyn} = DynamicSupervisor.start_link(strategy: :one_for_one)
      {:ok, sup} = Supervisor.start_link([], strategy: :one_for_one)
      {:ok, tasks} = Task.Supervisor.start_link()
      %{dyn: dyn, sup: sup, tasks: tasks}
    end

    defp as_restricted(fun) do
      Task.async(fn ->
        :ok = Seccomp.restrict(deny: [:os])
        fun.()
      end)
      |> Task.await()
    end

    test "through Seccomp.start_child", %{dyn: dyn, sup: sup} do
      {:ok, a} = as_restricted(fn -> Seccomp.start_child(dyn, {Worker, 1}) end)
      {:ok, b} = as_restricted(fn -> Seccomp.start_child(sup, {Worker, 2}) end)
      assert GenServer.call(a, :check_os) == {:deny, :error}
      assert GenServer.call(b, :check_os) == {:deny, :error}
    end

    test "through checked apply of the plain OTP functions", %{dyn: dyn, sup: sup} do
      spec = Supervisor.child_spec({Worker, 3}, id: :w3)

      {:ok, a} =
        as_restricted(fn -> Seccomp.apply(DynamicSupervisor, :start_child, [dyn, {Worker, 3}]) end)

      {:ok, b} = as_restricted(fn -> Seccomp.apply(:supervisor, :start_child, [sup, spec]) end)

      {:ok, c} =
        as_restricted(fn ->
          Seccomp.apply(Supervisor, :start_child, [sup, Supervisor.child_spec({Worker, 4}, id: :w4)])
        end)

      for pid <- [a, b, c], do: assert(GenServer.call(pid, :check_os) == {:deny, :error})
    end

    test "through Task.Supervisor", %{tasks: tasks} do
      me = self()

      as_restricted(fn ->
        Seccomp.task_start_child(tasks, fn -> send(me, {:t1, Seccomp.check({:os, :cmd, 1})}) end)

        Seccomp.apply(Task.Supervisor, :start_child, [
          tasks,
          fn -> send(me, {:t2, Seccomp.check({:os, :cmd, 1})}) end
        ])

        Seccomp.task_async(tasks, fn -> Seccomp.check({:os, :cmd, 1}) end) |> Task.await()
      end)
      |> then(&assert(&1 == {:deny, :error}))

      assert_receive {:t1, {:deny, :error}}
      assert_receive {:t2, {:deny, :error}}
    end

    test "through the eval sandbox", %{dyn: dyn} do
      opts = [
        bindings: [dyn: dyn],
        policy: :processes,
        allow: [
          {DynamicSupervisor, :start_child, 2},
          {Seccomp.SupervisorTest.Worker, :__struct__, 0},
          # The child's start is checked as a call of the caller.
          {Seccomp.SupervisorTest.Worker, :start_link, 1}
        ]
      ]

      code = "DynamicSupervisor.start_child(dyn, {Seccomp.SupervisorTest.Worker, 5})"

      # A supervisor outside the sandbox only when the caller lists it.
      assert {:error, {:seccomp_violation, {DynamicSupervisor, :start_child, 2}}} =
               Seccomp.Eval.eval(code, opts)

      assert {:ok, {:ok, pid}, _} = Seccomp.Eval.eval(code, [send_to: [dyn]] ++ opts)

      assert restricted?(pid)
      assert Seccomp.check(pid, {:os, :cmd, 1}) == {:deny, :error}
    end

    test "a raw start_child request from a restricted sender is refused", %{sup: sup} do
      msg =
        {:"$gen_call", {self(), make_ref()},
         {:start_child, Supervisor.child_spec({Worker, 9}, id: :raw)}}

      result =
        as_restricted(fn ->
          try do
            Seccomp.apply(:erlang, :send, [sup, msg])
          rescue
            e -> e
          end
        end)

      assert %Seccomp.ViolationError{mfa: {:erlang, :send, 2}} = result
      refute Enum.any?(Supervisor.which_children(sup), fn {id, _, _, _} -> id == :raw end)
    end
  end

  test "ps and tree show restriction state" do
    {:ok, sup} =
      Supervisor.start_link(
        [Seccomp.child_spec(Supervisor.child_spec({Worker, :a}, id: :a), @no_os)],
        strategy: :one_for_one
      )

    [%{id: :a, seccomp: %{mode: :filter}}] = Seccomp.tree(sup)
    [{:a, pid, _, _}] = Supervisor.which_children(sup)
    assert Enum.any?(Seccomp.ps(), &(&1.pid == pid and &1.mode == :filter))
  end

  defp wait_for_child(sup, id, old, tries \\ 200) do
    case Enum.find(Supervisor.which_children(sup), fn {i, _, _, _} -> i == id end) do
      {_, pid, _, _} when is_pid(pid) and pid != old -> pid
      _ when tries > 0 -> Process.sleep(5) && wait_for_child(sup, id, old, tries - 1)
    end
  end
end
