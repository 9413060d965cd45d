%% @doc The fields of every distribution control message, typed as the
%% runtime assumes them when it acts on the message.
%%
%% The filter judges a control message by its operation, sender and
%% destination; the runtime also reads the fields the filter does not
%% (sequential-trace tokens, request ids, references, unused atoms), and
%% some of them it trusts without checking: a trace token that is not a
%% token crashes the emulator. So every field of every control message the
%% filter knows has a type here, and a control message with a field of any
%% other type is malformed. Reasons are any term (bounded like every term),
%% and a spawn request's call and options are the filter's to judge.
-module(seccomp_dist_control).

-export([well_formed/1]).

%% Sequential-trace counters are small non-negative integers (64-bit smalls).
-define(SMALL, (1 bsl 59)).
%% The largest sequential-trace label a peer may send (in words: a tuple of
%% a few atoms and numbers, a short string).
-define(LABEL_WORDS, 256).

%% @doc Whether every field of the control tuple `Ctl' has the type the
%% runtime assumes.
-spec well_formed(tuple()) -> boolean().
well_formed({1, F, T}) -> pid(F) andalso pid(T);
well_formed({2, U, T}) -> is_atom(U) andalso pid(T);
well_formed({3, F, T, _Reason}) -> pid(F) andalso pid(T);
well_formed({4, F, T}) -> pid(F) andalso pid(T);
well_formed({5}) -> true;
well_formed({6, F, U, Name}) -> pid(F) andalso is_atom(U) andalso is_atom(Name);
well_formed({7, F, T}) -> pid(F) andalso pid(T);
well_formed({8, F, T, _Reason}) -> pid(F) andalso pid(T);
well_formed({12, U, T, Tok}) -> is_atom(U) andalso pid(T) andalso token(Tok);
well_formed({13, F, T, Tok, _Reason}) -> pid(F) andalso pid(T) andalso token(Tok);
well_formed({16, F, U, Name, Tok}) -> pid(F) andalso is_atom(U) andalso is_atom(Name) andalso token(Tok);
well_formed({18, F, T, Tok, _Reason}) -> pid(F) andalso pid(T) andalso token(Tok);
well_formed({19, F, T, Ref}) -> pid(F) andalso proc(T) andalso ref(Ref);
well_formed({20, F, T, Ref}) -> pid(F) andalso proc(T) andalso ref(Ref);
well_formed({21, F, T, Ref, _Reason}) -> proc(F) andalso pid(T) andalso ref(Ref);
well_formed({22, F, T}) -> pid(F) andalso pid(T);
well_formed({23, F, T, Tok}) -> pid(F) andalso pid(T) andalso token(Tok);
well_formed({24, F, T}) -> pid(F) andalso pid(T);
well_formed({25, F, T, Tok}) -> pid(F) andalso pid(T) andalso token(Tok);
well_formed({26, F, T}) -> pid(F) andalso pid(T);
well_formed({27, F, T, Tok}) -> pid(F) andalso pid(T) andalso token(Tok);
well_formed({28, F, T, Ref}) -> proc(F) andalso pid(T) andalso ref(Ref);
well_formed({29, Id, F, GL, MFA, Opts}) -> spawn_req(Id, F, GL, MFA, Opts);
well_formed({30, Id, F, GL, MFA, Opts, Tok}) -> spawn_req(Id, F, GL, MFA, Opts) andalso token(Tok);
well_formed({31, Id, T, Flags, Result}) -> spawn_reply(Id, T, Flags, Result);
well_formed({32, Id, T, Flags, Result, Tok}) -> spawn_reply(Id, T, Flags, Result) andalso token(Tok);
well_formed({33, F, Alias}) -> pid(F) andalso ref(Alias);
well_formed({34, F, Alias, Tok}) -> pid(F) andalso ref(Alias) andalso token(Tok);
well_formed({35, Id, F, T}) -> counter(Id) andalso pid(F) andalso pid(T);
well_formed({36, Id, F, T}) -> counter(Id) andalso pid(F) andalso pid(T);
well_formed({37, Flags, F, T}) -> altact(Flags, F, T);
well_formed({37, Flags, F, T, Tok}) -> altact(Flags, F, T) andalso token(Tok);
well_formed(_) -> false.

%% The call and the options are judged by the filter (a bad one gets a
%% failed spawn reply).
spawn_req(Id, F, GL, _MFA, _Opts) ->
    ref(Id) andalso pid(F) andalso pid(GL).

spawn_reply(Id, T, Flags, Result) ->
    ref(Id) andalso pid(T) andalso counter(Flags) andalso (is_pid(Result) orelse is_atom(Result)).

altact(Flags, F, T) ->
    counter(Flags) andalso pid(F) andalso (is_pid(T) orelse is_reference(T) orelse is_atom(T)).

%% `{Flags, Label, Serial, Sender, LastSerial}'; the label is any term, but
%% a small one: the receiver takes the token on, and a server carries it on
%% everything it sends until it gets a message without one (`global' to
%% every node that connects).
token({Flags, Label, Serial, Sender, Last}) ->
    small(Flags) andalso small(Serial) andalso pid(Sender) andalso small(Last)
        andalso erts_debug:flat_size(Label) =< ?LABEL_WORDS;
token(_) ->
    false.

pid(P) -> is_pid(P).
proc(P) -> is_pid(P) orelse is_atom(P).
ref(R) -> is_reference(R).
counter(N) -> is_integer(N) andalso N >= 0.
small(N) -> is_integer(N) andalso N >= 0 andalso N < ?SMALL.
