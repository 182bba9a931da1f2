using Norman.Core.Protocol;
using Norman.Daemon.Dataplane;
using Norman.Daemon.Policy.Bpf;

namespace Norman.Daemon.Control;

/// <summary>The capture family: taps with libpcap filters, bounded per user, their expressions compiled off the control loop.</summary>
public sealed partial class ControlPlane
{
    private async Task<int[]> OnCaptureStart(ControlSession session, ControlRequest request, ControlResponse response)
    {
        var tap = await StartCaptureAsync(session, request);
        response.Capture = DescribeCapture(tap, !IsAdministrator(session.Identity));
        response.Notes = AppNameNotes(null, request.App);
        return [tap.Region.Fd, tap.Wakeup.ApplicationFd];
    }

    private Task<int[]> OnCaptureStats(ControlSession session, ControlRequest request, ControlResponse response)
    {
        var mine = session.FindTap(request.Handle ?? -1)
            ?? throw new ControlException(ControlProtocol.Errors.NoSuchSocket, $"Capture {request.Handle} is not one of this connection's.");
        response.Capture = DescribeCapture(mine, mine.OnlyUid >= 0);
        return NoDescriptors;
    }

    /// <summary>Captures one ordinary user may run at once (each holds a ring and two descriptors in the daemon).</summary>
    public int MaxCapturesPerUid
    {
        get => (int)_captures.LimitPerUid;
        init => _captures = new UserBudget(value);
    }

    public const int DefaultMaxCapturesPerUid = 16;

    private readonly UserBudget _captures = new(DefaultMaxCapturesPerUid);

    private long _nextTapId;

    private async Task<Capture.CaptureTap> StartCaptureAsync(ControlSession session, ControlRequest request)
    {
        var caller = session.Identity;
        string direction = request.Chain ?? "any";
        if (direction is not ("ingress" or "egress" or "any" or "port"))
        {
            throw new ControlException(ControlProtocol.Errors.InvalidArgument, $"'{direction}' is not a capture point: use ingress, egress, any or port.");
        }
        bool ordinary = !IsAdministrator(caller);
        TakeCapture(caller, ordinary);
        Capture.CaptureTap tap;
        try
        {
            // An ordinary user sees only their own sockets' packets, as they could see them in their own process.
            tap = await CompileAsync(caller, request.Expression ?? "", expression => new Capture.CaptureTap(Interlocked.Increment(ref _nextTapId),
                expression, request.SnapLength ?? 262144,
                direction is "ingress" or "any" or "port", direction is "egress" or "any" or "port", ordinary ? caller.Uid : -1,
                request.App is null ? -1 : appNames.IdOf(request.App), request.AfterFilter ?? false, atPort: direction == "port"));
        }
        catch
        {
            ReturnCapture(caller.Uid, ordinary);
            throw;
        }
        session.Own(tap);
        var add = new AddTapCommand(tap);
        engine.Post(add);
        await add.Applied;
        log.Info($"capture {tap.Id} '{tap.Expression}' on {direction} by {caller.ProcessName} (pid {caller.Pid}, uid {caller.Uid})");
        return tap;
    }

    /// <summary>Stops a capture of the session's: the dataplane lets go of it first, then its memory and descriptors go.</summary>
    public async Task StopCaptureAsync(ControlSession session, Capture.CaptureTap tap)
    {
        if (!session.Disown(tap))
        {
            return;
        }
        var remove = new RemoveTapCommand(tap);
        engine.Post(remove);
        await remove.Applied;
        tap.Dispose();
        ReturnCapture(tap.OnlyUid, ordinary: tap.OnlyUid >= 0);
    }

    /// <summary>An ordinary user's filter expression: at most this long (libpcap takes about 0.15 s at worst on it; see PcapFilter).</summary>
    public const int MaxOrdinaryExpressionBytes = 1024;

    /// <summary>Compilations an ordinary user may have under way at once.</summary>
    private readonly UserBudget _compiles = new(1);

    /// <summary>
    /// Builds what needs a libpcap expression compiled on a thread of its own, not the control loop's: a long compile
    /// keeps no one else's request waiting (libpcap compiles one at a time, so only other compiles queue). An ordinary
    /// user's expression is bounded tighter than an administrator's, and one of theirs compiles at a time.
    /// </summary>
    private async Task<T> CompileAsync<T>(PeerIdentity caller, string expression, Func<string, T> build)
    {
        bool ordinary = !IsAdministrator(caller);
        int bytes = System.Text.Encoding.UTF8.GetByteCount(expression);
        if (ordinary && bytes > MaxOrdinaryExpressionBytes)
        {
            throw new ControlException(ControlProtocol.Errors.InvalidArgument,
                $"A filter expression of {bytes} bytes is over the {MaxOrdinaryExpressionBytes}-byte limit for an ordinary user " +
                $"(administrators: {PcapFilter.MaxExpressionBytes}). Use a shorter one.");
        }
        if (ordinary && !_compiles.TryTake(caller.Uid, 1))
        {
            throw new ControlException(ControlProtocol.Errors.Busy,
                $"uid {caller.Uid} already has a filter expression compiling; wait for it to finish.");
        }
        try
        {
            log.Info($"compiling a {bytes}-byte filter expression for {caller.ProcessName} (pid {caller.Pid}, uid {caller.Uid})");
            return await Task.Factory.StartNew(() => build(expression), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        }
        catch (PcapFilterException error)
        {
            throw new ControlException(ControlProtocol.Errors.InvalidArgument, error.Message);
        }
        finally
        {
            if (ordinary)
            {
                _compiles.Return(caller.Uid, 1);
            }
        }
    }

    /// <summary>A capture: two of the daemon's descriptors, and for an ordinary user one of their <see cref="MaxCapturesPerUid"/>.</summary>
    private void TakeCapture(PeerIdentity caller, bool ordinary)
    {
        if (ordinary && !_captures.TryTake(caller.Uid, 1))
        {
            throw new ControlException(ControlProtocol.Errors.TooManySockets,
                $"uid {caller.Uid} already runs {_captures.Held(caller.Uid)} captures, the limit for an ordinary user. Stop one, or capture as root.");
        }
        if (!Descriptors.TryTake(Capture.CaptureTap.Descriptors, administrator: !ordinary))
        {
            if (ordinary)
            {
                _captures.Return(caller.Uid, 1);
            }
            throw new ControlException(ControlProtocol.Errors.TooManySockets, "Cannot start a capture: " + Descriptors.Refusal(caller.Uid, !ordinary));
        }
    }

    private void ReturnCapture(int uid, bool ordinary)
    {
        if (ordinary)
        {
            _captures.Return(uid, 1);
        }
        Descriptors.Return(Capture.CaptureTap.Descriptors, administrator: !ordinary);
    }

    private static CaptureInfo DescribeCapture(Capture.CaptureTap tap, bool ownOnly) => new()
    {
        TapId = tap.Id,
        SlotCount = Norman.Core.Capture.CaptureRecord.SlotCount,
        SlotSize = Norman.Core.Capture.CaptureRecord.SlotSize,
        RegionBytes = tap.Region.Length,
        SnapLength = tap.SnapLength,
        Captured = Volatile.Read(ref tap.Captured),
        Dropped = Volatile.Read(ref tap.Dropped),
        OwnPacketsOnly = ownOnly,
    };
}
