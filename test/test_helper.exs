Code.require_file("support/sentinels.exs", __DIR__)
Code.require_file("support/wait.exs", __DIR__)
Code.require_file("support/peer_vm.exs", __DIR__)
Code.require_file("support/soak.exs", __DIR__)
Code.require_file("support/escape_attempts.exs", __DIR__)
Code.require_file("support/usability_corpus.exs", __DIR__)
Code.require_file("support/backends.exs", __DIR__)
Code.require_file("support/profiles.exs", __DIR__)
# The library logs through OTP's logger; the tests use Elixir's Logger too.
{:ok, _} = Application.ensure_all_started(:logger)
{:ok, _} = Application.ensure_all_started(:beam_seccomp)
# The call graph and the sets derived from it are built in the background on
# first use; tests that count processes and ETS tables must not see it at work.
:ok = :seccomp_flatteners.ensure()
# Violations are logged by design; keep the test output readable.
Logger.configure(level: :error)
ExUnit.start()
