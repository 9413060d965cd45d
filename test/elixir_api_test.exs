defmodule Seccomp.ElixirApiTest do
  # The Elixir API in the conventions Elixir users know: exception structs,
  # bang and non-bang pairs, validated options with clear errors.
  use ExUnit.Case, async: false
  import ExUnit.CaptureLog
  alias Seccomp.Eval

  defp in_process(fun), do: fun |> Task.async() |> Task.await(30_000)

  describe "violations" do
    test "raise Seccomp.ViolationError with a readable message in Elixir" do
      result =
        in_process(fn ->
          :ok = Seccomp.restrict(allow: [String])
          assert Seccomp.apply(String, :upcase, ["ok"]) == "OK"

          assert_raise Seccomp.ViolationError,
                       "File.read!/1 is not allowed by the seccomp policy",
                       fn -> Seccomp.apply(File, :read!, ["/etc/passwd"]) end

          assert_raise Seccomp.ViolationError,
                       ":os.getpid/0 is not allowed by the seccomp policy",
                       fn ->
                         Seccomp.apply(:os, :getpid, [])
                       end

          # the Erlang API keeps its error term
          try do
            :seccomp.apply(:os, :getpid, [])
          catch
            :error, reason -> reason
          end
        end)

      assert result == {:seccomp_violation, {:os, :getpid, 0}}
    end

    test "spawns refused by no_spawn raise it too" do
      in_process(fn ->
        :ok = Seccomp.restrict(allow: [String], no_spawn: true)
        assert_raise Seccomp.ViolationError, fn -> Seccomp.spawn(fn -> :ok end) end
      end)
    end

    test "the violation log names Elixir functions as Elixir does" do
      # (the test helper keeps the level at :error)
      level = Logger.level()
      Logger.configure(level: :warning)
      on_exit(fn -> Logger.configure(level: level) end)

      log =
        capture_log([level: :warning], fn ->
          in_process(fn ->
            :ok = Seccomp.restrict(allow: [String])
            catch_error(Seccomp.apply(File, :read!, ["/etc/passwd"]))
          end)

          Process.sleep(100)
        end)

      assert log =~ "called File.read!/1"
      refute log =~ "Elixir.File"
    end
  end

  describe "policies" do
    test "mode: does not mix with allow:/deny: and is not dropped silently" do
      assert {:error, {:invalid_policy, {:conflicting_keys, [:allow, :mode]}}} =
               Seccomp.Policy.new(allow: [String], mode: :blacklist)

      assert {:error, {:invalid_policy, {:conflicting_keys, [:deny, :rules]}}} =
               Seccomp.Policy.new(deny: [File], rules: [:os])

      assert_raise ArgumentError, ~r/conflicting_keys/, fn ->
        Seccomp.Policy.new!(allow: [String], mode: :whitelist)
      end

      assert %Seccomp.Policy{mode: :blacklist} = Seccomp.Policy.new!(mode: :blacklist, rules: [:os])
    end

    defmodule Worker do
      use GenServer
      def start_link(arg), do: GenServer.start_link(__MODULE__, arg)
      def init(arg), do: {:ok, arg}
    end

    test "{:app_env, app, key} takes the keyword lists the rest of the API takes" do
      Application.put_env(:beam_seccomp, :api_test_policy, deny: [:os])
      spec = Seccomp.child_spec({Worker, :x}, {:app_env, :beam_seccomp, :api_test_policy})
      {:ok, sup} = Supervisor.start_link([spec], strategy: :one_for_one)
      [{_, pid, _, _}] = Supervisor.which_children(sup)
      assert Seccomp.check(pid, {:os, :cmd, 1}) == {:deny, :error}
      assert Seccomp.check(pid, {:file, :read_file, 1}) == :allow
      Supervisor.stop(sup)
    after
      Application.delete_env(:beam_seccomp, :api_test_policy)
    end
  end

  test "bad input follows the result's shape: tagged results or ArgumentError" do
    assert {:error, {:invalid_policy, _}} = Seccomp.restrict(:bad)
    assert {:error, {:badarg, :x}} = Seccomp.status(:x)
    assert {:error, {:invalid_option, {:timeout, -1}}} = Eval.eval("1", timeout: -1)
    assert_raise Seccomp.EvalError, ~r/timeout/, fn -> Eval.eval!("1", timeout: -1) end
    assert_raise ArgumentError, fn -> Seccomp.check(:bad) end
    assert_raise ArgumentError, fn -> Seccomp.apply(:lists, :reverse, :not_a_list) end
    assert_raise ArgumentError, fn -> Seccomp.spawn(:not_a_fun) end
    assert_raise ArgumentError, fn -> Seccomp.child_spec({Agent, fn -> 1 end}, :bad) end
  end

  describe "Seccomp.Eval" do
    test "a binding a run does not pass is named as written" do
      {:ok, rule} = Eval.prepare("price * qty", bindings: [:price, :qty])
      assert Eval.run(rule, price: 3) == {:error, {:missing_binding, :qty}}
      assert Eval.run(rule, %{qty: 3}) == {:error, {:missing_binding, :price}}
      assert_raise Seccomp.EvalError, ~r/missing_binding/, fn -> Eval.run!(rule, price: 3) end
    end

    test "bang functions return the value and raise exception structs" do
      assert Eval.eval!("Enum.sum(1..10)") == 55
      rule = Eval.prepare!("x * 2", bindings: [:x])
      assert Eval.run!(rule, x: 21) == 42

      assert_raise Seccomp.ViolationError,
                   "File.read!/1 is not allowed by the seccomp policy",
                   fn ->
                     Eval.eval!(~s{File.read!("/etc/passwd")})
                   end

      assert_raise ArithmeticError, fn -> Eval.eval!("1 / 0") end

      assert_raise Seccomp.EvalError, ~r/^compile error on line 1: .*nope/, fn ->
        Eval.eval!("nope + 1")
      end

      assert_raise Seccomp.EvalError, ~r/syntax error/, fn -> Eval.prepare!("1 +") end

      assert_raise Seccomp.EvalError, ~r/timeout/, fn ->
        Eval.eval!("Process.sleep(:infinity)", timeout: 50)
      end
    end
  end
end
