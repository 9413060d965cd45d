%% The context of a sandbox (or of caller-mode runs), shared by the
%% seccomp_sandbox* modules only; everyone else treats it as opaque.
-record(ctx, {id :: reference(),
              tab :: ets:tid() | caller,
              keeper :: pid() | none,
              ticket :: reference() | none,
              %% `none': check the process's own layers; else this policy too.
              policy :: reference() | none,
              max_processes :: non_neg_integer(),
              max_heap_size :: non_neg_integer(),
              max_binary :: non_neg_integer(),
              max_atoms :: non_neg_integer(),
              %% Bytes (words times eight plus binary bytes) a term that
              %% leaves a member or is walked in one call may flatten to.
              max_copy :: non_neg_integer(),
              send_to :: [atom() | pid()],
              %% The sandbox policy is a denylist: see seccomp_sandbox_data.
              denylist = false :: boolean()}).

%% Integers below this multiply, print and compare without a size check.
-define(SMALL, (1 bsl 32)).
