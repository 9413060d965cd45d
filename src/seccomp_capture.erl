%% @doc A group leader that keeps what sandboxed code prints (up to a cap)
%% instead of letting it reach the host's console.
-module(seccomp_capture).

-export([start/1, take/1, is_initial_call/1]).
-export([init/1]).

%% Heap words of a capture beyond what it keeps: formatting a request
%% (`io_lib:format/2' on the sandbox's arguments) happens here.
-define(WORKING_WORDS, 1000000).

%% @doc Start a capture process that keeps at most `Max' bytes. Its heap is
%% bounded too: a request that would format more than it can keep kills it
%% (the writer gets an error), and it never formats past `Max'.
-spec start(non_neg_integer()) -> pid().
start(Max) ->
    %% A character of a formatted list takes two words.
    Heap = ?WORKING_WORDS + 2 * Max,
    spawn_opt(?MODULE, init, [Max], [{max_heap_size, #{size => Heap, kill => true, error_logger => false}}]).

%% @doc Whether a process's initial call is a capture's (see `seccomp_log_filter').
-spec is_initial_call(mfa()) -> boolean().
is_initial_call(Call) -> Call =:= {?MODULE, init, 1}.

%% @private
-spec init(non_neg_integer()) -> no_return().
init(Max) -> loop(Max, [], 0).

%% @doc Stop the capture and return what was printed.
-spec take(pid()) -> binary().
take(Pid) ->
    Ref = monitor(process, Pid),
    Pid ! {take, self(), Ref},
    receive
        {Ref, Output} -> demonitor(Ref, [flush]), Output;
        {'DOWN', Ref, _, _, _} -> <<>>
    end.

loop(Max, Acc, Size) ->
    receive
        {io_request, From, ReplyAs, Request} ->
            {Reply, Acc1, Size1} = request(Request, Max, Acc, Size),
            From ! {io_reply, ReplyAs, Reply},
            loop(Max, Acc1, Size1);
        {take, From, Ref} ->
            From ! {Ref, iolist_to_binary(lists:reverse(Acc))};
        _ ->
            loop(Max, Acc, Size)
    end.

request({put_chars, Encoding, Chars}, Max, Acc, Size) ->
    keep(unicode:characters_to_binary(Chars, Encoding), Max, Acc, Size);
request({put_chars, _Encoding, io_lib, _F, _Args}, Max, Acc, Size) when Size >= Max ->
    %% Nothing more would be kept: nothing to format.
    {ok, Acc, Size};
request({put_chars, Encoding, io_lib, F, Args}, Max, Acc, Size) when is_list(Args) ->
    try unicode:characters_to_binary(apply(io_lib, F, Args), Encoding) of
        Bin -> keep(Bin, Max, Acc, Size)
    catch _:_ -> {{error, format}, Acc, Size}
    end;
request({requests, Rs}, Max, Acc, Size) ->
    lists:foldl(fun(R, {_, A, S}) -> request(R, Max, A, S) end, {ok, Acc, Size}, Rs);
request({get_opts}, _Max, Acc, Size) -> {[{binary, false}, {encoding, unicode}], Acc, Size};
request({getopts}, _Max, Acc, Size) -> {[{binary, false}, {encoding, unicode}], Acc, Size};
request({setopts, _}, _Max, Acc, Size) -> {ok, Acc, Size};
request(get_geometry, _Max, Acc, Size) -> {{error, enotsup}, Acc, Size};
request({get_geometry, _}, _Max, Acc, Size) -> {{error, enotsup}, Acc, Size};
request(_Other, _Max, Acc, Size) -> {eof, Acc, Size}.

keep(Bin, Max, Acc, Size) when is_binary(Bin) ->
    Room = max(0, Max - Size),
    Kept = binary:part(Bin, 0, min(Room, byte_size(Bin))),
    {ok, [Kept | Acc], Size + byte_size(Kept)};
keep(_Error, _Max, Acc, Size) ->
    {{error, encoding}, Acc, Size}.
