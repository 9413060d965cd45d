defmodule Seccomp.Test.EscapeAttempts do
  @moduledoc false
  # The escape suite's attempts, as {name, code, profile}. Every payload below
  # would change a sentinel (see Seccomp.Test.Sentinels) if it ran.

  @file_path "/tmp/seccomp_pwned"
  @agent "{:ok, a} = Agent.start(fn -> 'SECCOMP_PWNED' end)"

  # Calls that would change something outside the sandbox: {module, function, args source}.
  @payloads [
    {"File", "write!", [~s("#{@file_path}"), ~s("x")]},
    {"System", "put_env", [~s("SECCOMP_PWNED"), ~s("1")]},
    {":persistent_term", "put", [":seccomp_pwned", "1"]},
    {"Application", "put_env", [":beam_seccomp", ":pwned", "true"]},
    {":os", "putenv", ["'SECCOMP_PWNED'", "'1'"]},
    {":file", "write_file", ["'#{@file_path}'", ~s("x")]},
    {":erlang", "send", [":seccomp_canary", ":pwned"]},
    {"Process", "send", [":seccomp_canary", ":pwned", "[]"]},
    {":os", "cmd", ["'touch #{@file_path}'"]},
    {"Code", "eval_string", [~S|"File.write!(\"/tmp/seccomp_pwned\", \"x\")"|]},
    {":erpc", "call", ["node()", "File", ":write!", ~s(["#{@file_path}", "x"])]},
    {":rpc", "call", ["node()", ":os", ":putenv", "['SECCOMP_PWNED', '1']"]},
    {"Module", "create", ["Pwned", "nil", "__ENV__"]},
    {":erlang", "open_port", [~s({:spawn, 'touch #{@file_path}'}), "[]"]}
  ]

  defp args(a), do: Enum.join(a, ", ")

  # Ways of making the call: directly, dynamically, through funs handed to compiled code...
  defp vectors({m, f, a}) do
    n = length(a)
    call = "#{m}.#{f}(#{args(a)})"

    [
      {:direct, call},
      {:apply, "apply(#{m}, :#{f}, [#{args(a)}])"},
      {:kernel_apply, "Kernel.apply(#{m}, :#{f}, [#{args(a)}])"},
      {:erlang_apply, ":erlang.apply(#{m}, :#{f}, [#{args(a)}])"},
      {:nested_apply, "apply(:erlang, :apply, [#{m}, :#{f}, [#{args(a)}]])"},
      {:variable_module, "m = #{m}; m.#{f}(#{args(a)})"},
      {:variable_function, "f = :#{f}; apply(#{m}, f, [#{args(a)}])"},
      {:capture, "g = &#{m}.#{f}/#{n}; g.(#{args(a)})"},
      {:function_capture, "Function.capture(#{m}, :#{f}, #{n}) |> apply([#{args(a)}])"},
      {:make_fun, ":erlang.make_fun(#{m}, :#{f}, #{n}) |> :erlang.apply([#{args(a)}])"},
      {:zipwith3_apply, ":lists.zipwith3(&:erlang.apply/3, [#{m}], [:#{f}], [[#{args(a)}]])"},
      {:capture_to_compiled, to_compiled(m, f, a)},
      {:caught_then_ok, "try do #{call} rescue _ -> :ok catch _, _ -> :ok end"},
      {:in_anonymous_fn, "(fn -> #{call} end).()"},
      {:spawned, spawned(call), :processes},
      {:task, "Task.async(fn -> #{call} end) |> Task.await()", :processes}
    ]
  end

  defp to_compiled(m, f, [a]), do: "Enum.map([#{a}], &#{m}.#{f}/1)"
  defp to_compiled(m, f, [a, b]), do: "Enum.zip_with([#{a}], [#{b}], &#{m}.#{f}/2)"

  defp to_compiled(m, f, [a, b, c]),
    do: ":lists.zipwith3(&#{m}.#{f}/3, [#{a}], [#{b}], [#{c}])"

  defp to_compiled(m, f, a),
    do: "Enum.map([[#{args(a)}]], fn a -> apply(&#{m}.#{f}/#{length(a)}, a) end)"

  defp spawned(call) do
    "{pid, ref} = spawn_monitor(fn -> #{call} end); receive do {:DOWN, ^ref, _, _, r} -> r end"
  end

  # Attempts that are not a payload through a vector.
  @elixir_singles [
    {:defmodule, "defmodule Pwned do end"},
    {:module_create_quote,
     "Module.create(Pwned, quote(do: def(x, do: 1)), Macro.Env.location(__ENV__))"},
    {:require, "require Logger; Logger.error(\"x\")"},
    {:use, "use GenServer"},
    {:import_file, "import File; write!(\"#{@file_path}\", \"x\")"},
    {:alias_then_call, "alias File, as: F; F.write!(\"#{@file_path}\", \"x\")"},
    {:quote_eval, "Code.eval_quoted(quote(do: File.write!(\"#{@file_path}\", \"x\")))"},
    {:elixir_module_compile, ":elixir_module.compile(Pwned, nil, [], __ENV__)"},
    {:erl_eval, ":erl_eval.exprs([], [])"},
    {:compile_forms, ":compile.forms([])"},
    {:code_load, ":code.load_binary(Pwned, 'pwned.beam', <<>>)"},
    {:load_nif, ":erlang.load_nif('/tmp/pwned', 0)"},
    {:file_stream_struct, "%File.Stream{path: \"#{@file_path}\"}"},
    {:io_stream_struct, "%IO.Stream{device: :standard_io, raw: true, line_or_bytes: :line}"},
    {:forged_struct_device,
     "Enum.into([\"x\"], %{__struct__: IO.Stream, device: :seccomp_canary, raw: true, line_or_bytes: :line})"},
    {:forged_struct_into,
     "Enum.into([\"x\"], %{__struct__: File.Stream, path: \"#{@file_path}\", modes: [:write], line_or_bytes: :line, raw: true})"},
    {:forged_struct_interpolation,
     "\"\#{%{__struct__: File.Stream, path: \"#{@file_path}\", modes: [], line_or_bytes: :line, raw: true}}\""},
    {:forged_struct_access, "%{__struct__: File, x: 1}[:x]"},
    {:forged_struct_put_in, "put_in(%{__struct__: File, x: 1}[:x], 2)"},
    {:forged_struct_to_string, "to_string(%{__struct__: File.Stream, path: \"x\"})"},
    {:forged_struct_inspect, "inspect(%{__struct__: File.Stream, path: \"x\"})"},
    {:forged_struct_via_map_put,
     "Map.put(%{path: \"#{@file_path}\", modes: [:write], line_or_bytes: :line, raw: true}, :__struct__, File.Stream) |> then(&Enum.into([\"x\"], &1))"},
    {:kernel_struct, "struct(File.Stream, path: \"#{@file_path}\")"},
    {:binary_to_term_fun, ":erlang.binary_to_term(#{inspect(:erlang.term_to_binary(&:os.cmd/1))})"},
    {:process_dictionary, "Process.put(:pwned, true)"},
    {:trap_exit, "Process.flag(:trap_exit, true)"},
    {:max_heap_flag, ":erlang.process_flag(:max_heap_size, 0)"},
    {:ets_table, ":ets.new(:pwned, [:named_table, :public])"},
    {:whereis, "Process.whereis(:init)"},
    {:registered, "Process.registered()"},
    {:halt, ":erlang.halt()"},
    {:system_halt, "System.halt()"},
    {:system_cmd, "System.cmd(\"touch\", [\"#{@file_path}\"])"},
    {:node_spawn, "Node.spawn(node(), fn -> :ok end)"},
    {:node_connect, "Node.connect(:\"pwned@localhost\")"},
    {:trace, ":erlang.trace(:all, true, [:call])"},
    {:send_to_file_server,
     "send(:file_server_2, {:\"$gen_call\", {self(), make_ref()}, {:write_file, '#{@file_path}', \"x\"}})"},
    {:send_to_init, "send(:init, {:stop, :stop})"},
    {:genserver_call, "GenServer.call(:application_controller, :which_applications)"},
    {:exit_canary, "Process.exit(canary, :kill)", :processes},
    {:link_canary, "Process.link(canary)", :processes},
    {:monitor_canary, "Process.monitor(canary)", :processes},
    {:send_canary_pid, "send(canary, :pwned)", :processes},
    {:agent_on_canary, "Agent.get(canary, fn _ -> :ok end)", :processes},
    {:spawn_mfa, "spawn(File, :write!, [\"#{@file_path}\", \"x\"]); Process.sleep(100)",
     :processes},
    {:spawn_opt, ":erlang.spawn_opt(fn -> :ok end, [{:min_heap_size, 100_000_000}])", :processes},
    {:remote_spawn, ":erlang.spawn(node(), fn -> :ok end)", :processes},
    {:send_after, "Process.send_after(self(), :x, 10)", :processes},
    {:group_leader, ":erlang.group_leader(self(), self())", :processes},
    {:dbg, "dbg(1)"},
    {:macro_exported, "macro_exported?(Pwned, :x, 1)"},
    {:string_to_atom_flood, "for i <- 1..1000, do: String.to_atom(\"pwn_a_\#{i}\")"},
    {:interpolated_atom_flood, "for i <- 1..1000, do: :\"pwn_b_\#{i}\""},
    {:list_to_atom_flood, "for i <- 1..1000, do: List.to_atom('pwn_c_\#{i}')"},
    {:source_atom_flood, Enum.map_join(1..200, "; ", &":pwn_d_#{&1}")},
    {:source_alias_flood, Enum.map_join(1..200, "; ", &"PwnAlias#{&1}")},
    {:apply_in_guard_like_position,
     "case 1 do x when x > 0 -> File.write!(\"#{@file_path}\", \"x\") end"},
    {:stream_resource,
     "Stream.resource(fn -> File.write!(\"#{@file_path}\", \"x\") end, fn s -> {:halt, s} end, fn _ -> :ok end) |> Enum.to_list()"},
    {:reduce_with_capture, "Enum.reduce([\"#{@file_path}\"], \"x\", &File.write!/2)"},
    {:sort_by_capture, "Enum.sort_by([\"SECCOMP_PWNED\"], &System.get_env/1)"},
    {:kernel_then, "then(\"#{@file_path}\", &File.touch!/1)"},
    {:pipe_into_capture, "\"#{@file_path}\" |> File.touch!()"},
    # Allowed functions that apply what their data names.
    {:agent_get_mfa, "#{@agent}; Agent.get(a, :os, :putenv, ['1'])", :processes},
    {:agent_update_mfa, "#{@agent}; Agent.update(a, :os, :putenv, ['1'])", :processes},
    {:agent_get_and_update_mfa, "#{@agent}; Agent.get_and_update(a, :os, :putenv, ['1'])",
     :processes},
    {:agent_cast_mfa, "#{@agent}; Agent.cast(a, :os, :putenv, ['1']); Process.sleep(50)",
     :processes},
    {:agent_apply_state,
     "{:ok, a} = Agent.start(fn -> :os end); Agent.get(a, :erlang, :apply, [:putenv, ['SECCOMP_PWNED', '1']])",
     :processes},
    {:agent_forged_struct_arg,
     "{:ok, a} = Agent.start(fn -> [\"x\"] end); Agent.get(a, Enum, :into, [%{__struct__: File.Stream, path: \"#{@file_path}\", modes: [:write], line_or_bytes: :line, raw: true}])",
     :processes},
    {:task_async_stream_mfa,
     "Task.async_stream([['SECCOMP_PWNED']], :erlang, :apply, [:os, :putenv]) |> Enum.to_list()",
     :processes},
    {:sort_with_module, "Enum.sort([\"#{@file_path}\", \"x\"], File)"},
    {:calendar_field,
     "Date.to_string(%{__struct__: Date, calendar: File, year: 2020, month: 1, day: 1})"},
    {:exception_module,
     "Exception.message(%{__struct__: File, __exception__: true, message: \"x\"})"},
    {:timer_apply_after,
     ":timer.apply_after(0, :os, :putenv, ['SECCOMP_PWNED', '1']); Process.sleep(50)"},
    {:spawn_request, ":erlang.spawn_request(:os, :putenv, ['SECCOMP_PWNED', '1'])", :processes},
    {:node_spawn_mfa, ":erlang.spawn(node(), :os, :putenv, ['SECCOMP_PWNED', '1'])", :processes},
    {:variable_module_no_parens, "m = :os; m.getpid"},
    {:variable_module_no_parens_field, "m = System; m.pid"},
    # Library code that reaches what a denylist denies (or the VM's
    # capabilities) without naming it.
    {:peer_exec,
     ":peer.start(%{exec: {'/bin/sh', ['-c', 'touch #{@file_path}']}, connection: :standard_io, wait_boot: 500})"},
    {:zip_read_file,
     "{:ok, {_, z}} = :zip.zip('x.zip', ['/etc/passwd'], [:memory]); :zip.unzip(z, [:memory])"},
    {:zip_create_file, ":zip.create('#{@file_path}', [{'a', \"x\"}])"},
    {:filelib_ensure_dir, ":filelib.ensure_dir('#{@file_path}/x')"},
    {:logger_file_handler,
     ":logger.add_handler(:pwned, :logger_std_h, %{config: %{file: '#{@file_path}'}})"},
    {:basedir_reads_env, ":filename.basedir(:user_cache, 'x')"},
    {:init_arguments, ":init.get_arguments()"},
    {:start_child_of_host_supervisor,
     ":supervisor.start_child(:kernel_sup, %{id: :pwned, start: {:os, :putenv, ['SECCOMP_PWNED', '1']}})"},
    {:start_child_of_host_supervisor_elixir,
     "Supervisor.start_child(:kernel_sup, %{id: :pwned, start: {:os, :putenv, ['SECCOMP_PWNED', '1']}})"},
    # What a run could read of its runner: other callers' requests, the keeper.
    {:runner_links, "Process.info(self(), :links)"},
    {:runner_dictionary, ":erlang.process_info(self(), :dictionary)"},
    {:runner_messages, ":erlang.process_info(self(), [:messages])"},
    {:runner_parent, ":erlang.process_info(self(), :parent)"},
    {:host_process_info,
     ":erlang.process_info(Process.whereis(:seccomp_canary) || self(), :messages)"}
  ]

  # Host code that formats what leaves the sandbox must not run what the
  # sandbox's data names: a stack frame's `error_info' (module and function
  # called with the reason), a forged exception struct, a crashed child's
  # reason as the logger reports it. These runs may end in any error (or a
  # value), but must leave nothing changed.
  @error_info_payloads [
    {":persistent_term", ":put", ":seccomp_pwned"},
    {":erlang", ":send", ":seccomp_canary"},
    {":application", ":set_env", "[{:beam_seccomp, [{:pwned, true}]}]"}
  ]

  defp forged_raise(m, f, reason),
    do:
      ":erlang.raise(:error, #{reason}, [{:m, :f, 0, [error_info: %{module: #{m}, function: #{f}}]}])"

  def elixir_inert do
    for {m, f, reason} <- @error_info_payloads,
        {name, code, profile} <- [
          {"raised", forged_raise(m, f, reason), :pure},
          {"caught and reraised",
           "try do #{forged_raise(m, f, reason)} rescue e -> reraise e, __STACKTRACE__ end", :pure},
          {"thrown with the stack",
           "throw({#{reason}, [{:m, :f, 0, [error_info: %{module: #{m}, function: #{f}}]}]})",
           :pure},
          {"exit with the stack",
           "exit({#{reason}, [{:m, :f, 0, [error_info: %{module: #{m}, function: #{f}}]}]})",
           :pure},
          {"in a spawned child",
           "spawn(fn -> #{forged_raise(m, f, reason)} end); Process.sleep(200)", :processes},
          {"in a monitored child",
           "{_, ref} = spawn_monitor(fn -> #{forged_raise(m, f, reason)} end); receive do {:DOWN, ^ref, _, _, r} -> r end",
           :processes},
          {"in a task", "Task.start(fn -> #{forged_raise(m, f, reason)} end); Process.sleep(200)",
           :processes},
          {"in an agent",
           "{:ok, a} = Agent.start(fn -> 1 end); Agent.cast(a, fn _ -> #{forged_raise(m, f, reason)} end); Process.sleep(200)",
           :processes}
        ] do
      {"error_info #{m}.#{f} #{name}", code, profile}
    end ++
      [
        {"forged exception struct",
         "raise %{__struct__: :persistent_term, __exception__: true, message: 1}", :pure},
        {"forged exception struct in a field",
         "raise %KeyError{key: %{__struct__: Date, calendar: :persistent_term, year: 1, month: 1, day: 1}}",
         :pure}
      ]
  end

  def erlang_inert do
    for {m, f, reason} <- [
          {"persistent_term", "put", "seccomp_pwned"},
          {"erlang", "send", "seccomp_canary"}
        ],
        {name, code, profile} <- [
          {"raised",
           "erlang:raise(error, #{reason}, [{m, f, 0, [{error_info, \#{module => #{m}, function => #{f}}}]}]).",
           :pure},
          {"in a spawned child",
           "spawn(fun() -> erlang:raise(error, #{reason}, [{m, f, 0, [{error_info, \#{module => #{m}, function => #{f}}}]}]) end), receive after 200 -> ok end.",
           :processes}
        ] do
      {"error_info #{m}:#{f} #{name}", code, profile}
    end
  end

  @erlang_attempts [
    {:os_cmd, ~S|os:cmd("touch /tmp/seccomp_pwned").|},
    {:write_file, ~S|file:write_file("/tmp/seccomp_pwned", <<"x">>).|},
    {:erlang_apply, ~S|erlang:apply(file, write_file, ["/tmp/seccomp_pwned", <<"x">>]).|},
    {:local_apply, ~S|apply(file, write_file, ["/tmp/seccomp_pwned", <<"x">>]).|},
    {:variable_module, ~S|M = file, M:write_file("/tmp/seccomp_pwned", <<"x">>).|},
    {:variable_function, ~S|F = write_file, file:F("/tmp/seccomp_pwned", <<"x">>).|},
    {:fun_value, ~S|F = fun file:write_file/2, F("/tmp/seccomp_pwned", <<"x">>).|},
    {:fun_to_lists_map, ~S|lists:map(fun os:cmd/1, ["touch /tmp/seccomp_pwned"]).|},
    {:fun_to_foldl, ~S|lists:foldl(fun file:write_file/2, <<"x">>, ["/tmp/seccomp_pwned"]).|},
    {:zipwith3_apply,
     ~S|lists:zipwith3(fun erlang:apply/3, [file], [write_file], [["/tmp/seccomp_pwned", <<"x">>]]).|},
    {:dynamic_fun, ~S|{M, F, A} = {os, cmd, 1}, G = fun M:F/A, G("touch /tmp/seccomp_pwned").|},
    {:make_fun, ~S|(erlang:make_fun(os, cmd, 1))("touch /tmp/seccomp_pwned").|},
    {:apply_fun, ~S|erlang:apply(fun os:cmd/1, ["touch /tmp/seccomp_pwned"]).|},
    {:map_key_pattern, ~S|#{os:cmd("touch /tmp/seccomp_pwned") := V} = #{}.|},
    {:map_key_pattern_in_case,
     ~S|case #{} of #{os:putenv("SECCOMP_PWNED", "1") := V} -> V; _ -> ok end.|},
    {:map_key_in_fun_head,
     ~S|F = fun(#{os:cmd("touch /tmp/seccomp_pwned") := _}) -> ok end, F(#{}).|},
    {:guard_call,
     ~S|case 1 of X when os:cmd("touch /tmp/seccomp_pwned") =:= [] -> X; _ -> ok end.|},
    {:binary_size_expr, ~S|<<0:(length(os:cmd("touch /tmp/seccomp_pwned")))>>.|},
    {:catch_then_ok, ~S|catch os:cmd("touch /tmp/seccomp_pwned"), ok.|},
    {:try_then_ok, ~S|try file:write_file("/tmp/seccomp_pwned", <<"x">>) catch _:_ -> ok end.|},
    {:persistent_term, ~S|persistent_term:put(seccomp_pwned, 1).|},
    {:app_env, ~S|application:set_env(beam_seccomp, pwned, true).|},
    {:putenv, ~S|os:putenv("SECCOMP_PWNED", "1").|},
    {:open_port, ~S|erlang:open_port({spawn, "touch /tmp/seccomp_pwned"}, []).|},
    {:load_module, ~S|erlang:load_module('Elixir.Pwned', <<>>).|},
    {:code_server, ~S|code:load_binary('Elixir.Pwned', "x", <<>>).|},
    {:erl_eval, ~S|erl_eval:exprs([], []).|},
    {:rpc_call, ~S|rpc:call(node(), os, cmd, ["touch /tmp/seccomp_pwned"]).|},
    {:erpc_cast, ~S|erpc:cast(node(), os, cmd, ["touch /tmp/seccomp_pwned"]).|},
    {:send_registered, ~S|seccomp_canary ! pwned.|},
    {:erlang_send, ~S|erlang:send(seccomp_canary, pwned).|},
    {:halt, ~S|halt().|},
    {:erlang_halt, ~S|erlang:halt(0).|},
    {:ets_new, ~S|ets:new(pwned, [named_table, public]).|},
    {:whereis, ~S|whereis(init).|},
    {:list_to_atom_flood,
     ~S|[list_to_atom("pwn_e_" ++ integer_to_list(I)) \|\| I <- lists:seq(1, 1000)].|},
    {:source_atom_flood, Enum.map_join(1..200, ", ", &"pwn_f_#{&1}") <> "."},
    {:spawn_fun,
     ~S|spawn(fun() -> os:cmd("touch /tmp/seccomp_pwned") end), receive after 100 -> ok end.|,
     :processes},
    {:spawn_mfa, ~S|spawn(os, cmd, ["touch /tmp/seccomp_pwned"]), receive after 100 -> ok end.|,
     :processes},
    {:proc_lib_spawn, ~S|proc_lib:spawn(os, cmd, ["touch /tmp/seccomp_pwned"]).|, :processes},
    {:exit_canary, ~S|exit(Canary, kill).|, :processes},
    {:send_canary, ~S|Canary ! pwned.|, :processes},
    {:record, ~S|#file_info{}.|},
    {:local_fun_ref, ~S|F = fun helper/1, F(1).|},
    {:agent_get_mfa,
     ~S|{ok, A} = 'Elixir.Agent':start(fun() -> "SECCOMP_PWNED" end), 'Elixir.Agent':get(A, os, putenv, ["1"]).|,
     :processes},
    {:timer_apply_after,
     ~S|timer:apply_after(0, os, putenv, ["SECCOMP_PWNED", "1"]), receive after 50 -> ok end.|},
    {:spawn_request, ~S|erlang:spawn_request(os, putenv, ["SECCOMP_PWNED", "1"]).|, :processes},
    {:peer_exec,
     ~S|peer:start(#{exec => {"/bin/sh", ["-c", "touch /tmp/seccomp_pwned"]}, connection => standard_io, wait_boot => 500}).|},
    {:zip_create_file, ~S|zip:create("/tmp/seccomp_pwned", [{"a", <<"x">>}]).|},
    {:filelib_ensure_dir, ~S|filelib:ensure_dir("/tmp/seccomp_pwned/x").|},
    {:init_arguments, ~S|init:get_arguments().|},
    {:start_child_of_host_supervisor,
     ~S|supervisor:start_child(kernel_sup, #{id => pwned, start => {os, putenv, ["SECCOMP_PWNED", "1"]}}).|},
    {:runner_links, ~S|erlang:process_info(self(), links).|}
  ]

  def elixir do
    for_payloads =
      for payload <- @payloads, vector <- vectors(payload) do
        {m, f, _} = payload
        {name, code, profile} = with_profile(vector)
        {"#{m}.#{f} via #{name}", code, profile}
      end

    for_payloads ++ Enum.map(@elixir_singles, &with_profile/1)
  end

  def erlang, do: Enum.map(@erlang_attempts, &with_profile/1)

  # Struct literals of a namespace the denylist denies: building the value
  # runs none of the module's code (the expander's `__struct__/0` aside), and
  # what would run it (protocols, Access) is refused by the forged_* attempts.
  def denylist_applies?(name), do: name not in ["file_stream_struct", "io_stream_struct"]

  # What a denylist user writes: the modules and functions the payloads and
  # attempts above call by name. Every attempt must still be refused: the
  # sandbox's own mediation (funs, structs, what data names, processes) has
  # to hold when everything else is allowed.
  def denylist do
    modules = [
      :os,
      File,
      :file,
      :prim_file,
      System,
      Code,
      :code,
      Module,
      :persistent_term,
      Application,
      :application,
      :application_controller,
      :erpc,
      :rpc,
      Node,
      :net_kernel,
      :erl_eval,
      :compile,
      :elixir_module,
      :ets,
      :init,
      :erl_prim_loader,
      Port,
      Process,
      GenServer,
      :gen_server,
      :gen,
      :proc_lib,
      Logger,
      IO
    ]

    bifs =
      for f <- [
            :halt,
            :load_nif,
            :load_module,
            :open_port,
            :trace,
            :process_flag,
            :group_leader,
            :whereis,
            :registered,
            :put,
            :get,
            :erase,
            :send_after,
            :start_timer,
            :spawn_opt,
            :spawn_request,
            :monitor_node,
            :disconnect_node
          ],
          do: {:erlang, f, :_}

    %{
      mode: :blacklist,
      rules:
        modules ++
          bifs ++
          [
            {Kernel, :struct, :_},
            {Kernel, :struct!, :_},
            {Kernel, :macro_exported?, :_},
            {Kernel, :dbg, :_}
          ]
    }
  end

  defp with_profile({name, code}), do: {"#{name}", code, :pure}
  defp with_profile({name, code, profile}), do: {"#{name}", code, profile}
end
