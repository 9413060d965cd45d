%% @doc Checks on the fields of a peer's message: whether a pid, a
%% gen_server caller or a list belongs to (or is well-formed for) the
%% sending node. A peer speaks for itself only: a pid or alias that stands
%% for the sender and is not on the sender's node would make a local
%% server answer, link to or act on a process the peer picked.
-module(seccomp_dist_owned).

-export([own/2, caller/2, all/2, proper/1, length/1]).
-compile({no_auto_import, [length/1]}).

%% @doc `Pid' is a pid of node `Peer'.
-spec own(term(), node()) -> boolean().
own(Pid, Peer) -> is_pid(Pid) andalso node(Pid) =:= Peer.

%% @doc A gen_server `From' of the peer: its pid is the peer's, and so is
%% the alias a reply would be sent to (`[alias | Ref]' tags).
-spec caller(term(), node()) -> boolean().
caller({Pid, Tag}, Peer) -> own(Pid, Peer) andalso alias(Tag, Peer);
caller(_From, _Peer) -> false.

alias([alias | Ref], Peer) -> is_reference(Ref) andalso node(Ref) =:= Peer;
alias([[alias | Ref] | _], Peer) -> is_reference(Ref) andalso node(Ref) =:= Peer;
alias(_Tag, _Peer) -> true.

%% @doc `lists:all/2' that is false for an improper list (or a non-list)
%% instead of raising.
-spec all(fun((term()) -> boolean()), term()) -> boolean().
all(F, [H | T]) -> F(H) andalso all(F, T);
all(_F, []) -> true;
all(_F, _) -> false.

%% @doc A proper list.
-spec proper(term()) -> boolean().
proper(L) -> all(fun(_) -> true end, L).

%% @doc The length of a proper list, -1 for anything else.
-spec length(term()) -> integer().
length(L) -> length(L, 0).

length([_ | T], N) -> length(T, N + 1);
length([], N) -> N;
length(_, _N) -> -1.
