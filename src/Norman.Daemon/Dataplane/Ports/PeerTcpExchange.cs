using Norman.Core.Packets;

namespace Norman.Daemon.Dataplane.Ports;

/// <summary>
/// One request-and-answer over TCP by the simulated peer, as `printf 'GET / HTTP/1.0\r\n\r\n' | nc host 80` does: it
/// connects, sends the request, acknowledges what comes back in order and ends when the server's FIN arrives. Not a
/// TCP stack: it keeps nothing out of order (a duplicate ACK asks the server's stack to send again) and only resends
/// its own SYN and request. Enough for the demo and tests on the virtual wire, where a host needs to speak TCP to
/// Norman's applications. <see cref="OnSegment"/> runs on the dataplane thread; the rest on the caller's.
/// </summary>
internal sealed class PeerTcpExchange
{
    private const ushort Window = 65535;
    private readonly SimulatedPeer _peer;
    private readonly ushort _remotePort;
    private readonly byte[] _request;
    private readonly uint _initialSequence = (uint)Random.Shared.Next();
    private readonly MemoryStream _answer = new();
    private readonly TaskCompletionSource<PeerTcpResult> _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private uint _receiveNext;
    private bool _established;
    private volatile bool _requestAcknowledged;

    public PeerTcpExchange(SimulatedPeer peer, ushort localPort, ushort remotePort, byte[] request)
    {
        (_peer, LocalPort, _remotePort, _request) = (peer, localPort, remotePort, request);
    }

    public ushort LocalPort { get; }
    public Task<PeerTcpResult> Done => _done.Task;

    /// <summary>Sends the SYN, and again (with the request once connected) every 200 ms until the server has them.</summary>
    public async Task<PeerTcpResult> RunAsync(TimeSpan timeout)
    {
        using var clock = new CancellationTokenSource(timeout);
        Send(new TcpSegmentFields(_initialSequence, 0, TcpHeader.Syn, Window), SynOptions(), []);
        while (!Done.IsCompleted)
        {
            try
            {
                await Done.WaitAsync(TimeSpan.FromMilliseconds(200), clock.Token).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                if (!Volatile.Read(ref _established))
                {
                    Send(new TcpSegmentFields(_initialSequence, 0, TcpHeader.Syn, Window), SynOptions(), []);
                }
                else if (!_requestAcknowledged)
                {
                    SendRequest();
                }
            }
            catch (OperationCanceledException)
            {
                _done.TrySetResult(new PeerTcpResult(PeerTcpOutcome.TimedOut, [])); // the answer is the dataplane thread's
            }
        }
        return await Done.ConfigureAwait(false);
    }

    /// <summary>A segment from the server's port to ours (dataplane thread).</summary>
    public void OnSegment(in TcpHeader header, ReadOnlySpan<byte> payload)
    {
        if (Done.IsCompleted)
        {
            return;
        }
        byte flags = header.Flags;
        if ((flags & TcpHeader.Rst) != 0)
        {
            _done.TrySetResult(new PeerTcpResult(_established ? PeerTcpOutcome.Reset : PeerTcpOutcome.Refused, _answer.ToArray()));
            return;
        }
        if (!_established)
        {
            if ((flags & (TcpHeader.Syn | TcpHeader.Ack)) == (TcpHeader.Syn | TcpHeader.Ack) && header.Acknowledgement == _initialSequence + 1)
            {
                _receiveNext = header.Sequence + 1;
                Volatile.Write(ref _established, true);
                SendRequest();
            }
            return;
        }
        if ((flags & TcpHeader.Ack) != 0 && (int)(header.Acknowledgement - (_initialSequence + 1 + (uint)_request.Length)) >= 0)
        {
            _requestAcknowledged = true;
        }
        if (header.Sequence != _receiveNext || (payload.IsEmpty && (flags & TcpHeader.Fin) == 0))
        {
            if (header.Sequence != _receiveNext)
            {
                Acknowledge(); // out of order or again: say what we have, the server sends the rest
            }
            return;
        }
        _answer.Write(payload);
        _receiveNext += (uint)payload.Length;
        if ((flags & TcpHeader.Fin) == 0)
        {
            Acknowledge();
            return;
        }
        _receiveNext++;
        uint sequence = _initialSequence + 1 + (uint)_request.Length;
        Send(new TcpSegmentFields(sequence, _receiveNext, TcpHeader.Fin | TcpHeader.Ack, Window), [], []);
        _done.TrySetResult(new PeerTcpResult(PeerTcpOutcome.Answered, _answer.ToArray()));
    }

    private void SendRequest() =>
        Send(new TcpSegmentFields(_initialSequence + 1, _receiveNext, TcpHeader.Psh | TcpHeader.Ack, Window), [], _request);

    private void Acknowledge() =>
        Send(new TcpSegmentFields(_initialSequence + 1 + (uint)_request.Length, _receiveNext, TcpHeader.Ack, Window), [], []);

    private static byte[] SynOptions()
    {
        var options = new byte[8];
        TcpSegmentBuilder.WriteSynOptions(options, 1460, 0);
        return options;
    }

    private void Send(TcpSegmentFields fields, ReadOnlySpan<byte> options, ReadOnlySpan<byte> payload)
    {
        var frame = new byte[EthernetHeader.Size + TcpSegmentBuilder.HeaderLength + options.Length + payload.Length];
        EthernetHeader.Write(frame, _peer.HostMac, _peer.Mac, EtherTypes.IPv4);
        var packet = frame.AsSpan(EthernetHeader.Size);
        payload.CopyTo(packet[(TcpSegmentBuilder.HeaderLength + options.Length)..]);
        TcpSegmentBuilder.Write(packet, _peer.Address, LocalPort, _peer.HostAddress, _remotePort, fields, options, payload.Length);
        _peer.SendFrame(frame);
    }
}

public enum PeerTcpOutcome
{
    /// <summary>The server answered and closed (FIN).</summary>
    Answered,
    /// <summary>The SYN was answered by a reset: "Connection refused".</summary>
    Refused,
    /// <summary>The connection was reset after it was made.</summary>
    Reset,
    /// <summary>Nothing, or no end, came back in time (a filter that drops, say).</summary>
    TimedOut,
}

/// <summary>How the peer's TCP exchange ended, and the bytes the server sent.</summary>
public sealed record PeerTcpResult(PeerTcpOutcome Outcome, byte[] Answer);
