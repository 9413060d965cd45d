Application.ensure_all_started(:beam_seccomp)
ExUnit.start(capture_log: true)
