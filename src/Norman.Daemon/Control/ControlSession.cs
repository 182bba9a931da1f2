using System.Net.Sockets;
using System.Text.Json;
using Norman.Core.Protocol;
using Norman.Core.Shm;

namespace Norman.Daemon.Control;

/// <summary>
/// One application's control connection. Requests are handled one at a time, in order. When the connection
/// closes — the application exited, crashed or was killed — every socket it owned is released at once.
/// </summary>
/// <remarks>
/// What a connection may cost the daemon is bounded: a request's size (<see cref="MaxOrdinaryRequestBytes"/> for an
/// ordinary user, whose operations need little; the protocol's 16 MiB for an administrator's policy), the bytes of
/// requests still arriving on all of one user's connections (<paramref name="pendingRequests"/>, taken by the declared
/// length before anything is allocated), and the time an answer may wait for a caller that does not read
/// (<see cref="SendTimeout"/>, waited without a thread): then the connection is closed.
/// </remarks>
public sealed class ControlSession(Socket connection, PeerIdentity identity, ControlPlane plane, ILogSink log, UserBudget? pendingRequests = null)
{
    /// <summary>The largest request an ordinary user may send: a bind, a listing, a capture's expression.</summary>
    public const int MaxOrdinaryRequestBytes = 64 << 10;

    /// <summary>Bytes of unfinished requests one ordinary user's connections may hold in the daemon together.</summary>
    public const long DefaultPendingBytesPerUid = 4 << 20;

    /// <summary>How long an answer waits for a caller that does not read before the connection is closed.</summary>
    public static readonly TimeSpan SendTimeout = TimeSpan.FromSeconds(5);

    private readonly Dictionary<long, NormanSocket> _owned = new();

    /// <summary>Closed sockets' memory the application keeps mapped for its next binds on this connection.</summary>
    public KeptMemory Kept { get; } = new(plane.Sockets, identity.Uid);
    private readonly List<Capture.CaptureTap> _taps = new();
    private readonly bool _administrator = plane.IsAdministrator(identity);

    public void Own(Capture.CaptureTap tap)
    {
        lock (_taps)
        {
            _taps.Add(tap);
        }
    }

    public bool Disown(Capture.CaptureTap tap)
    {
        lock (_taps)
        {
            return _taps.Remove(tap);
        }
    }

    public Capture.CaptureTap? FindTap(long id)
    {
        lock (_taps)
        {
            return _taps.FirstOrDefault(t => t.Id == id);
        }
    }

    public PeerIdentity Identity { get; } = identity;

    public void Own(NormanSocket socket)
    {
        lock (_owned)
        {
            _owned[socket.Id] = socket;
        }
    }

    public void Disown(NormanSocket socket)
    {
        lock (_owned)
        {
            _owned.Remove(socket.Id);
        }
    }

    public NormanSocket? Find(long id)
    {
        lock (_owned)
        {
            return _owned.GetValueOrDefault(id);
        }
    }

    /// <summary>The connection's descriptor, which the <see cref="ControlReactor"/> watches.</summary>
    public int Fd { get; } = (int)connection.Handle;

    /// <summary>The reactor's name for this connection in its epoll.</summary>
    internal ulong ReactorToken { get; set; }

    /// <summary>The caller, as the log names it.</summary>
    public string Who { get; } = $"{identity.ProcessName} (pid {identity.Pid}, uid {identity.Uid})";

    /// <summary>What the reactor does with the connection after a turn.</summary>
    public enum Turn
    {
        /// <summary>Watch it again: everything it sent is answered.</summary>
        Watch,
        /// <summary>A request went to the pool, which resumes or ends the connection once it is answered.</summary>
        HandedOff,
        /// <summary>The caller closed it, or broke a limit: release what it held.</summary>
        Ended,
    }

    private readonly byte[] _prefix = new byte[4];
    private int _prefixRead;
    private byte[]? _body;
    private int _bodyRead;
    /// <summary>Bytes of the request being read taken from the user's budget, returned once it is read or the connection ends.</summary>
    private int _pendingTaken;

    /// <summary>
    /// On the reactor's thread, when the connection is readable: reads what has arrived and answers each complete
    /// request, up to <see cref="ControlReactor.RequestsPerTurn"/>. A request that must wait or may take long goes to
    /// the pool with the rest of the connection's turn.
    /// </summary>
    public Turn Serve(ControlReactor reactor)
    {
        for (int served = 0; served < ControlReactor.RequestsPerTurn; served++)
        {
            var (request, ended) = ReadRequest();
            if (ended)
            {
                return Turn.Ended;
            }
            if (request is null)
            {
                return Turn.Watch;
            }
            if (!AnswerAtOnce(request, reactor))
            {
                return Turn.HandedOff;
            }
        }
        return Turn.Watch;
    }

    /// <summary>
    /// Reads without waiting: a whole request's body when it has all arrived (null while it has not), or ended when the
    /// caller closed the connection or sent a request over its limits (answered with why).
    /// </summary>
    private (byte[]? Body, bool Ended) ReadRequest()
    {
        while (_prefixRead < _prefix.Length)
        {
            int got = ReceiveSome(_prefix.AsSpan(_prefixRead));
            if (got <= 0)
            {
                return (null, got == 0);
            }
            _prefixRead += got;
        }
        if (_body is null)
        {
            int length = ControlProtocol.ReadLength(_prefix);
            if (RefuseSize(length) is { } refusal)
            {
                log.Info($"closed the control connection of {Who}: {refusal}");
                return (null, true);
            }
            _body = new byte[length];
        }
        while (_bodyRead < _body.Length)
        {
            int got = ReceiveSome(_body.AsSpan(_bodyRead));
            if (got <= 0)
            {
                return (null, got == 0);
            }
            _bodyRead += got;
        }
        var body = _body;
        _body = null;
        _bodyRead = 0;
        _prefixRead = 0;
        ReturnPending();
        (_requestFds, _arrivingFds) = (_arrivingFds, _requestFds);
        return (body, false);
    }

    /// <summary>
    /// One recvmsg that never waits: the bytes it got, 0 at the end of the stream, -1 when nothing has arrived.
    /// Descriptors passed with the bytes belong to the request being read (an inherit's proof); past
    /// <see cref="FdPassing.MaxFds"/> a request they are closed at once.
    /// </summary>
    private int ReceiveSome(Span<byte> buffer)
    {
        int got = FdPassing.TryReceive(Fd, buffer, _arrivingFds);
        while (_arrivingFds.Count > FdPassing.MaxFds)
        {
            Libc.Close(_arrivingFds[^1]);
            _arrivingFds.RemoveAt(_arrivingFds.Count - 1);
        }
        return got;
    }

    /// <summary>Descriptors that came with the request being read, then with the one being handled (<see cref="TakeDescriptor"/>).</summary>
    private List<int> _arrivingFds = new();
    private List<int> _requestFds = new();

    /// <summary>The first descriptor the request being handled brought, now the caller's to close; -1 if it brought none.</summary>
    public int TakeDescriptor()
    {
        if (_requestFds.Count == 0)
        {
            return -1;
        }
        int fd = _requestFds[0];
        _requestFds.RemoveAt(0);
        return fd;
    }

    /// <summary>Closes what a handled request brought and no handler took.</summary>
    private void CloseRequestDescriptors()
    {
        FdPassing.CloseAll(_requestFds);
        _requestFds.Clear();
    }

    private void ReturnPending()
    {
        if (_pendingTaken > 0)
        {
            pendingRequests?.Return(Identity.Uid, _pendingTaken);
            _pendingTaken = 0;
        }
    }

    /// <summary>
    /// Answers a request on the reactor's thread when its operation is quick and its handler finished at once, and
    /// returns true; otherwise hands it, its answer and the connection's next turn to the pool and returns false.
    /// </summary>
    private bool AnswerAtOnce(byte[] body, ControlReactor reactor)
    {
        var request = Decode(body, out var malformed);
        _afterAnswer = null;
        if (malformed is null && !(ControlPlane.Operations.TryGetValue(request!.Op ?? "", out var operation) && operation.Quick))
        {
            reactor.HandOff(() => AnswerLaterAsync(HandleAsync(request), reactor));
            return false;
        }
        var handling = malformed is null ? HandleAsync(request!) : Task.FromResult((malformed, Array.Empty<int>(), true));
        if (!handling.IsCompleted)
        {
            reactor.HandOff(() => AnswerLaterAsync(handling, reactor));
            return false;
        }
        var (response, fds, reply) = handling.Result;
        CloseRequestDescriptors();
        if (!reply)
        {
            _afterAnswer?.Invoke();
            return true;
        }
        byte[] message = Encode(response, ref fds);
        int sent = FdPassing.TrySend(Fd, message, fds);
        if (sent < message.Length)
        {
            // The caller has left answers unread: the pool finishes this one (or gives up on the caller).
            reactor.HandOff(() => AnswerLaterAsync(Task.FromResult((response, sent == 0 ? fds : [], true)), reactor, message, sent));
            return false;
        }
        _afterAnswer?.Invoke(); // the answer and its descriptors are the caller's now
        return true;
    }

    /// <summary>
    /// On the pool: waits for a request's handling, sends its answer (or what is left of it from <paramref name="sent"/>
    /// of <paramref name="message"/>), then lets the reactor watch the connection again; a caller that does not take it
    /// in time loses the connection.
    /// </summary>
    private async Task AnswerLaterAsync(Task<(ControlResponse Response, int[] Fds, bool Reply)> handling, ControlReactor reactor,
        byte[]? message = null, int sent = 0)
    {
        try
        {
            var (response, fds, reply) = await handling;
            CloseRequestDescriptors();
            if (reply)
            {
                await SendRestAsync(message ?? Encode(response, ref fds), sent, fds);
            }
            _afterAnswer?.Invoke();
        }
        catch (Exception error) when (error is IOException or OperationCanceledException)
        {
            reactor.End(this, error.Message);
            return;
        }
        reactor.Resume(this);
    }

    /// <summary>Releases the connection: its sockets and captures, the request bytes it was still sending, the connection itself.</summary>
    public async Task EndAsync()
    {
        try
        {
            ReturnPending();
            CloseRequestDescriptors();
            FdPassing.CloseAll(_arrivingFds);
            _arrivingFds.Clear();
            await ReleaseAllAsync();
        }
        finally
        {
            connection.Dispose();
        }
    }

    /// <summary>
    /// Answers a request the connection may not send (too large for this caller, or over the user's bytes under way)
    /// and returns why; null when it may be read, its length then taken from the user's budget.
    /// </summary>
    private string? RefuseSize(int length)
    {
        int limit = _administrator ? ControlProtocol.MaxMessageBytes : MaxOrdinaryRequestBytes;
        string? refusal = null;
        if (length > limit)
        {
            refusal = $"A request of {length} bytes is over the {limit}-byte limit for uid {Identity.Uid}" +
                (_administrator ? "." : " (only an administrator's policy needs more).");
        }
        else if (pendingRequests is not null && !_administrator)
        {
            if (pendingRequests.TryTake(Identity.Uid, length))
            {
                _pendingTaken = length;
            }
            else
            {
                refusal = $"uid {Identity.Uid} already has {pendingRequests.Held(Identity.Uid)} bytes of requests under way on its connections, " +
                    $"and {pendingRequests.LimitPerUid} is the limit. Finish sending them first.";
            }
        }
        if (refusal is not null)
        {
            // Best effort, as the connection closes next: a caller that does not read never learns why, as before.
            FdPassing.TrySend(Fd, ControlProtocol.Encode(Refused(0, ControlProtocol.Errors.MessageTooLong, refusal)), []);
        }
        return refusal;
    }

    private static ControlRequest? Decode(byte[] body, out ControlResponse? malformed)
    {
        try
        {
            malformed = null;
            return ControlProtocol.DecodeRequest(body);
        }
        catch (JsonException error)
        {
            malformed = Refused(0, ControlProtocol.Errors.InvalidArgument, $"Malformed control request: {error.Message}");
            return null;
        }
    }

    /// <summary>Handles one request; the answer, its descriptors, and whether to send it (not when the caller asked for none).</summary>
    private async Task<(ControlResponse, int[], bool Reply)> HandleAsync(ControlRequest request)
    {
        bool reply = request.NoReply != true;
        try
        {
            var (response, fds) = await plane.HandleAsync(this, request);
            return (response, fds, reply);
        }
        catch (ControlException refused)
        {
            log.Info($"refused {request.Op} from {Who}: {refused.Message}");
            return (Refused(request.Id, refused.Code, refused.Message), [], reply);
        }
        catch (Exception error) when (error is not OperationCanceledException)
        {
            // A request the daemon should have refused cleanly: the caller is told, the daemon goes on, the log has why.
            log.Warn($"{request.Op} from {Who} failed: {error}");
            return (Refused(request.Id, ControlProtocol.Errors.Internal,
                $"The daemon failed on this {request.Op} request ({error.GetType().Name}: {error.Message}); its log has the details."), [], reply);
        }
    }

    /// <summary>
    /// The answer's bytes; one over the protocol's size bound is replaced by a refusal saying so (and passes no
    /// descriptors): the daemon never sends what a client must reject.
    /// </summary>
    private byte[] Encode(ControlResponse response, ref int[] fds)
    {
        byte[] message = ControlProtocol.Encode(response);
        if (message.Length - 4 > ControlProtocol.MaxMessageBytes)
        {
            log.Warn($"the answer to request {response.Id} would be {message.Length} bytes, over the protocol's {ControlProtocol.MaxMessageBytes}");
            message = ControlProtocol.Encode(Refused(response.Id, ControlProtocol.Errors.MessageTooLong,
                $"The answer would be {message.Length} bytes, over the protocol's {ControlProtocol.MaxMessageBytes}-byte limit."));
            fds = [];
        }
        return message;
    }

    /// <summary>
    /// Sends what is left of an answer from <paramref name="sent"/> (its fds with its first byte, if none went yet),
    /// without holding a thread while a slow caller reads: a caller that has not taken it within
    /// <see cref="SendTimeout"/> loses the connection (an IOException, which ends it).
    /// </summary>
    private async Task SendRestAsync(byte[] message, int sent, int[] fds)
    {
        long deadline = Environment.TickCount64 + (long)SendTimeout.TotalMilliseconds;
        while (sent < message.Length)
        {
            int went = FdPassing.TrySend(Fd, message.AsSpan(sent), sent == 0 ? fds : []);
            sent += went;
            if (went == 0)
            {
                if (Environment.TickCount64 > deadline)
                {
                    throw new IOException($"the caller left its answer unread for {SendTimeout.TotalSeconds:0} s");
                }
                await Task.Delay(TimeSpan.FromMilliseconds(5)); // the caller has left earlier answers unread: wait, but not on a thread
            }
        }
    }

    private static ControlResponse Refused(long id, string code, string message) =>
        new() { Id = id, Ok = false, Error = new ControlError(code, message) };

    /// <summary>What the request being handled does once its answer has gone out; dropped if it never does.</summary>
    private Action? _afterAnswer;

    /// <summary>Runs <paramref name="action"/> once this request's answer (and the descriptors it passes) has been sent.</summary>
    public void AfterAnswer(Action action) => _afterAnswer = action;

    /// <summary>Closes still finishing behind their answers; the session's end waits for them.</summary>
    private readonly List<Task> _finishing = new();

    /// <summary>A close that finishes after its answer: its failure is logged, and the session's end waits for it.</summary>
    public void Finishing(Task closing)
    {
        lock (_finishing)
        {
            _finishing.RemoveAll(task => task.IsCompleted);
            _finishing.Add(closing);
        }
        closing.ContinueWith(task => log.Warn($"close for {Identity.ProcessName} (pid {Identity.Pid}) failed: {task.Exception?.InnerException}"),
            CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
    }

    /// <summary>Releases every socket and capture the session holds, as when its connection closes.</summary>
    public async Task ReleaseAllAsync()
    {
        Task[] finishing;
        lock (_finishing)
        {
            finishing = [.. _finishing];
            _finishing.Clear();
        }
        await Task.WhenAll(finishing).ContinueWith(_ => { }, TaskScheduler.Default); // their failures are logged already
        Kept.EndAll();
        List<NormanSocket> owned;
        lock (_owned)
        {
            owned = _owned.Values.ToList();
        }
        foreach (var socket in owned)
        {
            if (socket.KeptAcrossExec && plane.WaitForExec(this, socket))
            {
                continue;
            }
            await plane.CloseAsync(this, socket);
        }
        List<Capture.CaptureTap> taps;
        lock (_taps)
        {
            taps = _taps.ToList();
        }
        foreach (var tap in taps)
        {
            await plane.StopCaptureAsync(this, tap);
        }
    }
}
