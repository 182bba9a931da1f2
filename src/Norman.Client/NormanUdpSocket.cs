using System.Diagnostics;
using System.Net;
using Norman.Core.Packets;
using Norman.Core.Pipes;

namespace Norman.Client;

/// <summary>
/// A UDP socket whose datagrams go through a Norman daemon's shared-memory pipes: one control call to bind,
/// then no system call per packet. Three ways to use it:
/// <list type="bullet">
/// <item>busy-polling and zero-copy: <see cref="GetSendBuffer"/>/<see cref="CommitSendTo"/>/<see cref="Flush"/> and
/// <see cref="TryPeek"/>/<see cref="Release"/>;</item>
/// <item>blocking: <c>SendTo</c> and <see cref="Receive"/>, which spin briefly, then sleep on an eventfd;</item>
/// <item>async: <see cref="ReceiveAsync"/>.</item>
/// </list>
/// Not thread-safe: one sender thread and one receiver thread at most, as a pipe has one producer and one consumer.
/// </summary>
public sealed class NormanUdpSocket : IDisposable
{
    /// <summary>The largest payload: a 1500-byte MTU less the IPv4 and UDP headers; Norman does not fragment.</summary>
    public const int MaxPayload = Mtu - UdpPacketBuilder.HeaderLengthV4;
    /// <summary>The largest payload over IPv6, whose header is 20 bytes longer.</summary>
    public const int MaxPayloadV6 = Mtu - UdpPacketBuilder.HeaderLengthV6;
    private const int Mtu = 1500;
    private const int ReleaseBatch = 32;
    /// <summary>How often a sender asks whether the daemon is still there: one system call a millisecond, not one a packet.</summary>
    private static readonly long LivenessTicks = Stopwatch.Frequency / 1000;
    private long _livenessCheckedAt;

    private ControlChannel _control;
    /// <summary>What the application asked for at bind, so <see cref="Reconnect"/> can ask again.</summary>
    private IPEndPoint? _requestedEndPoint;
    private int? _slotCount;
    private SocketPipes? _pipes;
    private ushort _identification;
    /// <summary>Where <see cref="GetSendBuffer"/>'s payload starts: behind room for the IPv4 headers, or the IPv6 ones on an IPv6 socket.</summary>
    private int _headerRoom = UdpPacketBuilder.HeaderLengthV4;
    private int _unreleased;
    /// <summary>Where async receives copy a datagram out of the pipe (one receiver per socket, so one buffer), made at the first: an idle socket does not carry it.</summary>
    private byte[]? _asyncBuffer;
    private bool _disposed;

    /// <summary>Connects to the daemon (at <paramref name="controlSocketPath"/>, $NORMAN_SOCKET or /run/norman/norman.sock).</summary>
    public NormanUdpSocket(string? controlSocketPath = null) => _control = ControlChannel.Share(controlSocketPath);

    public IPEndPoint? LocalEndPoint { get; private set; }

    /// <summary>
    /// The TOS byte of every datagram this socket sends, as setsockopt(IP_TOS) sets it: the DSCP in its top six bits
    /// (<c>46 &lt;&lt; 2</c> for EF). QoS classes can match it (`dscp ef`); a class with a `dscp` setting rewrites it.
    /// </summary>
    public byte TypeOfService { get; set; }
    public IPEndPoint? RemoteEndPoint { get; private set; }
    public bool IsBound => _pipes is not null;

    /// <summary>
    /// IPV6_V6ONLY, set before binding to ::: the socket takes and sends IPv6 only. Off by default, as on Linux: a socket
    /// on :: then takes IPv4 too, its senders shown as v4-mapped addresses (::ffff:198.18.0.2).
    /// </summary>
    public bool V6Only { get; set; }

    /// <summary>
    /// SO_REUSEADDR, set before <see cref="Bind(IPEndPoint, int?)"/>: this socket may share its port with another that set it
    /// too, when one of them is connected or they are bound to different addresses (as Linux lets UDP sockets).
    /// </summary>
    public bool ReuseAddress { get; set; }

    /// <summary>
    /// SO_REUSEPORT, set before binding: this socket may share its address and port with the same user's sockets that
    /// set it too, and each sender's datagrams go to one of them (as Linux's reuseport groups spread a server's threads).
    /// </summary>
    public bool ReusePort { get; set; }

    /// <summary>The largest payload <see cref="GetSendBuffer"/> gives: <see cref="MaxPayload"/>, or <see cref="MaxPayloadV6"/> on an IPv6 socket.</summary>
    public int SendBufferSize => Mtu - _headerRoom;

    private bool IsIpv6 => LocalEndPoint?.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6;
    public ushort LocalPort => (ushort)(LocalEndPoint?.Port ?? 0);

    /// <summary>
    /// Binds to a port (0 picks a free one) on the host's address or the wildcard; <paramref name="slotCount"/> slots in
    /// each pipe, or (null) as many as the daemon's --slots says.
    /// </summary>
    public void Bind(int port, IPAddress? address = null, int? slotCount = null) =>
        Bind(new IPEndPoint(address ?? IPAddress.Any, port), slotCount);

    public void Bind(IPEndPoint endPoint, int? slotCount = null)
    {
        ThrowIfDisposed();
        if (IsBound)
        {
            throw new NormanException("EINVAL", $"This socket is already bound to {LocalEndPoint}.");
        }
        _pipes = SocketPipes.Bind(_control, "udp", endPoint, slotCount, V6Only, ReuseAddress, ReusePort);
        LocalEndPoint = _pipes.LocalEndPoint;
        _headerRoom = IsIpv6 ? UdpPacketBuilder.HeaderLengthV6 : UdpPacketBuilder.HeaderLengthV4;
        _requestedEndPoint = endPoint;
        _slotCount = slotCount;
    }

    /// <summary>
    /// After a <see cref="NormanDaemonUnavailableException"/> (the daemon restarted or crashed): waits up to
    /// <paramref name="timeout"/> for a daemon on the same control socket, then binds this socket again to the port it
    /// had (an ephemeral port, too: the same number, if still free) and connects it to the same remote. Datagrams in the
    /// pipes when the daemon went away are lost, as a kernel loses its socket buffers when it reboots.
    /// Throws <see cref="NormanDaemonUnavailableException"/> if no daemon came back in time, and the bind's own errors
    /// (EADDRINUSE if another application took the port meanwhile).
    /// </summary>
    public void Reconnect(TimeSpan timeout)
    {
        ThrowIfDisposed();
        var local = LocalEndPoint ?? throw new NormanException("EINVAL", "Only a socket that was bound can reconnect; bind it instead.");
        var remote = RemoteEndPoint;
        var requested = _requestedEndPoint!;
        ReleasePipes();
        LocalEndPoint = null;
        RemoteEndPoint = null;
        string path = _control.Path;
        long deadline = Deadline(timeout);
        while (true)
        {
            try
            {
                // The dead connection is let go only for a live one, so that this socket always holds exactly one.
                var fresh = ControlChannel.Share(path);
                _control.Release();
                _control = fresh;
                break;
            }
            catch (NormanDaemonUnavailableException) when (Stopwatch.GetTimestamp() < deadline)
            {
                // Waiting for the daemon's restart: a backoff, not a synchronisation.
                Thread.Sleep(50);
            }
        }
        Bind(new IPEndPoint(requested.Address, local.Port), _slotCount);
        if (remote is not null)
        {
            Connect(remote);
        }
    }

    private void ReleasePipes()
    {
        _pipes?.Dispose();
        _pipes = null;
    }

    /// <summary>
    /// Fixes the remote end: sends go there, and only its datagrams are received. Binds a free port first if needed, on
    /// the wildcard of the remote's family.
    /// </summary>
    public void Connect(IPEndPoint remote)
    {
        ThrowIfDisposed();
        if (!IsBound)
        {
            Bind(0, remote.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 && !remote.Address.IsIPv4MappedToIPv6
                ? IPAddress.IPv6Any : IPAddress.Any);
        }
        _pipes!.Connect(_control, remote);
        RemoteEndPoint = remote;
    }

    // ---------------- Sending ----------------

    /// <summary>
    /// The payload area of the next free TX slot (up to <see cref="SendBufferSize"/> bytes), or empty when the pipe is
    /// full. Write the payload there, then <see cref="CommitSendTo"/>; <see cref="Flush"/> publishes the batch.
    /// </summary>
    public Span<byte> GetSendBuffer()
    {
        var slot = Tx.Claim();
        return slot.IsEmpty ? slot : slot.Slice(_headerRoom, SendBufferSize);
    }

    /// <summary>Completes the slot from <see cref="GetSendBuffer"/> as a datagram to the given destination (not yet published).</summary>
    public void CommitSendTo(int payloadLength, NetAddress destination, ushort destinationPort)
    {
        var slot = Tx.Claim();
        if (slot.IsEmpty)
        {
            throw new InvalidOperationException("CommitSendTo without a buffer from GetSendBuffer: the TX pipe is full.");
        }
        CommitClaimed(slot, _headerRoom, payloadLength, HeadersFor(destination, payloadLength, _headerRoom), destination, destinationPort);
    }

    /// <summary>
    /// The source of a datagram to <paramref name="destination"/> and the length of its headers, its payload checked
    /// against what the MTU leaves (the payload starting at <paramref name="payloadAt"/> in its slot, if further on).
    /// </summary>
    private (NetAddress Source, int HeaderLength) HeadersFor(NetAddress destination, int payloadLength, int payloadAt = 0)
    {
        var source = (_pipes ?? throw NotBound()).SourceFor(destination);
        int headerLength = UdpPacketBuilder.HeaderLength(source);
        if ((uint)payloadLength > (uint)(Mtu - Math.Max(headerLength, payloadAt)))
        {
            throw new ArgumentOutOfRangeException(nameof(payloadLength),
                $"A datagram to {destination} carries at most {Mtu - headerLength} bytes (MTU 1500; Norman does not fragment).");
        }
        return (source, headerLength);
    }

    /// <summary>
    /// Writes the <paramref name="headers"/> (<see cref="HeadersFor"/>) in front of a payload that starts at
    /// <paramref name="payloadAt"/> in the claimed slot and commits it: a dual-stack socket's payload, placed behind
    /// IPv6's room, moves up to IPv4's for an IPv4 destination.
    /// </summary>
    private void CommitClaimed(Span<byte> slot, int payloadAt, int payloadLength, (NetAddress Source, int HeaderLength) headers,
        NetAddress destination, ushort destinationPort)
    {
        var (source, headerLength) = headers;
        if (payloadAt != headerLength)
        {
            slot.Slice(payloadAt, payloadLength).CopyTo(slot[headerLength..]);
        }
        int length = UdpPacketBuilder.WriteHeaders(slot, source, LocalPort, destination, destinationPort, payloadLength, _identification++, TypeOfService);
        Tx.Commit(length);
    }

    /// <summary>Completes the slot as a datagram to the connected remote.</summary>
    public void CommitSend(int payloadLength)
    {
        var remote = RemoteEndPoint ?? throw new NormanException("EDESTADDRREQ", "This socket is not connected: use CommitSendTo with a destination, or Connect first.");
        CommitSendTo(payloadLength, NetAddress.From(remote.Address), (ushort)remote.Port);
    }

    /// <summary>
    /// Publishes every committed datagram to the dataplane with one store. Throws
    /// <see cref="NormanDaemonUnavailableException"/> if the daemon is gone (checked at most once a millisecond).
    /// </summary>
    public void Flush()
    {
        _pipes!.PublishTx();
        ThrowIfDaemonGoneLately();
    }

    /// <summary>Copies and sends one datagram if the pipe has room; publishes at once.</summary>
    public bool TrySendTo(ReadOnlySpan<byte> payload, NetAddress destination, ushort destinationPort)
    {
        var headers = HeadersFor(destination, payload.Length);
        var slot = Tx.Claim();
        if (slot.IsEmpty)
        {
            return false;
        }
        payload.CopyTo(slot[headers.HeaderLength..]);
        CommitClaimed(slot, headers.HeaderLength, payload.Length, headers, destination, destinationPort);
        Flush();
        return true;
    }

    /// <summary>Sends one datagram, waiting (spin, then yield) while the TX pipe is full.</summary>
    public void SendTo(ReadOnlySpan<byte> payload, IPEndPoint destination, TimeSpan? timeout = null) =>
        SendTo(payload, NetAddress.From(destination.Address), (ushort)destination.Port, timeout);

    public void SendTo(ReadOnlySpan<byte> payload, NetAddress destination, ushort destinationPort, TimeSpan? timeout = null)
    {
        ThrowIfDisposed();
        long deadline = Deadline(timeout);
        var wait = new SpinWait();
        while (!TrySendTo(payload, destination, destinationPort))
        {
            if (Stopwatch.GetTimestamp() > deadline)
            {
                throw new TimeoutException($"The TX pipe of {LocalEndPoint} stayed full: the dataplane is not draining it (line rate reached, or the daemon is stuck).");
            }
            ThrowIfDaemonGone();
            wait.SpinOnce(sleep1Threshold: -1);
        }
    }

    /// <summary>Sends to the connected remote.</summary>
    public void Send(ReadOnlySpan<byte> payload, TimeSpan? timeout = null)
    {
        var remote = RemoteEndPoint ?? throw new NormanException("EDESTADDRREQ", "This socket is not connected: use SendTo, or Connect first.");
        SendTo(payload, remote, timeout);
    }

    // ---------------- Receiving ----------------

    /// <summary>The oldest received datagram, in place, without waiting. Call <see cref="Release"/> when done with it.</summary>
    public bool TryPeek(out ReceivedDatagram datagram)
    {
        var rx = Rx;
        while (rx.Available() > 0)
        {
            var packet = rx.Peek();
            if (TryParse(packet, out datagram))
            {
                return true;
            }
            rx.Advance(); // The daemon only delivers well-formed datagrams; skip anything else rather than stall.
        }
        rx.Publish();
        _unreleased = 0;
        datagram = default;
        return false;
    }

    /// <summary>Gives the slot of the datagram from <see cref="TryPeek"/> back; slots return to the daemon in batches.</summary>
    public void Release()
    {
        var rx = Rx;
        rx.Advance();
        if (++_unreleased >= ReleaseBatch)
        {
            rx.Publish();
            _unreleased = 0;
        }
    }

    /// <summary>Copies the next datagram into <paramref name="buffer"/> if one is there; returns its length or -1.</summary>
    public int TryReceive(Span<byte> buffer, out NetAddress source, out ushort sourcePort)
    {
        if (!TryPeek(out var datagram))
        {
            source = default;
            sourcePort = 0;
            return -1;
        }
        int length = Math.Min(buffer.Length, datagram.Payload.Length);
        datagram.Payload[..length].CopyTo(buffer);
        source = datagram.Source;
        sourcePort = datagram.SourcePort;
        Release();
        return length;
    }

    /// <summary>
    /// Waits for the next datagram and copies it into <paramref name="buffer"/> (truncating, as recv does).
    /// Spins for 50 µs, then sleeps on the eventfd so an idle application uses no CPU.
    /// </summary>
    public int Receive(Span<byte> buffer, out IPEndPoint source, TimeSpan? timeout = null)
    {
        ThrowIfDisposed();
        long deadline = Deadline(timeout);
        while (true)
        {
            int length = TryReceive(buffer, out var address, out ushort port);
            if (length >= 0)
            {
                source = new IPEndPoint(EndPointAddress(address), port);
                return length;
            }
            if (!WaitToReceive(deadline))
            {
                throw new TimeoutException($"No datagram arrived on {LocalEndPoint} within {timeout}.");
            }
        }
    }

    /// <summary>
    /// Waits until something is in the RX pipe or <paramref name="deadline"/> passes (false then). Spins for 50 µs, then
    /// sleeps on the eventfd so an idle application uses no CPU.
    /// </summary>
    private bool WaitToReceive(long deadline)
    {
        var waiter = new PipeWaiter(Stopwatch.GetTimestamp());
        while (Rx.Available() == 0)
        {
            long now = Stopwatch.GetTimestamp();
            if (waiter.Spin(now))
            {
                continue;
            }
            if (now > deadline)
            {
                return false;
            }
            if (Rx.PrepareToSleep())
            {
                int sliceMs = (int)Math.Clamp((deadline - now) * 1000 / Stopwatch.Frequency, 1, 200);
                if (!_pipes!.Wakeup.Wait(sliceMs))
                {
                    ThrowIfDaemonGone();
                }
            }
        }
        return true;
    }

    /// <summary>The descriptor that becomes readable when the daemon wakes this socket (after <see cref="ArmWakeup"/>).</summary>
    internal int WakeupDescriptor => _pipes?.Wakeup.Fd ?? -1;

    /// <summary>Asks the daemon to wake <see cref="WakeupDescriptor"/> at the next datagram; false when one is already there.</summary>
    internal bool ArmWakeup() => Rx.PrepareToSleep();

    /// <summary>
    /// The TX pipe was found full: asks the daemon to wake <see cref="WakeupDescriptor"/> once half of it is free; false
    /// when half is free already. Called by the one thread that sends.
    /// </summary>
    internal bool AskForTxRoom() => Tx.AskForRoom();

    /// <summary>Half the TX pipe is free (a writable socket, as Linux counts a UDP socket's send buffer); under the sender's lock.</summary>
    internal bool HasTxRoom() => Tx.HasRoom();

    /// <summary>Takes a wake-up that arrived, so that the descriptor is quiet again.</summary>
    internal void TakeWakeup() => _pipes?.Wakeup.Take();

    /// <summary>Waits asynchronously for the next datagram; no thread is held while it sleeps.</summary>
    public async ValueTask<NormanDatagram> ReceiveAsync(CancellationToken cancellation = default)
    {
        ThrowIfDisposed();
        var buffer = _asyncBuffer ??= new byte[MaxPayload];
        var waiter = new PipeWaiter(Stopwatch.GetTimestamp());
        while (true)
        {
            int length = TryReceive(buffer, out var address, out ushort port);
            if (length >= 0)
            {
                return new NormanDatagram(buffer.AsSpan(0, length).ToArray(), new IPEndPoint(EndPointAddress(address), port));
            }
            if (waiter.Spin(Stopwatch.GetTimestamp()))
            {
                continue;
            }
            if (Rx.PrepareToSleep())
            {
                var wakeup = _pipes!.Wakeup;
                var woken = WakeupReactor.Instance.WaitAsync(wakeup.Fd, cancellation);
                if (await Task.WhenAny(woken, Task.Delay(200, cancellation)) != woken)
                {
                    ThrowIfDaemonGone();
                }
                cancellation.ThrowIfCancellationRequested();
                wakeup.Wait(0);
            }
        }
    }

    /// <summary>A sender's address as this socket's family shows it: an IPv6 socket's IPv4 senders v4-mapped, as Linux's.</summary>
    private IPAddress EndPointAddress(NetAddress address) => IsIpv6 ? address.ToIPAddress().MapToIPv6() : address.ToIPAddress();

    /// <summary>A UDP packet (IPv4 or IPv6) from the RX pipe, as the daemon delivered it; anything else is skipped, not trusted.</summary>
    private static bool TryParse(ReadOnlySpan<byte> packet, out ReceivedDatagram datagram)
    {
        datagram = default;
        if (packet.Length < UdpPacketBuilder.HeaderLengthV4)
        {
            return false;
        }
        if (packet[0] >> 4 == 6)
        {
            if (PacketParser.ParseIpPacket(packet, out var parsed) != ParseError.None || parsed.Kind != PacketKind.Udp || parsed.IsFragment)
            {
                return false;
            }
            datagram = new ReceivedDatagram(packet[parsed.PayloadOffset..parsed.PacketEnd], parsed.Source, parsed.SourcePort);
            return true;
        }
        ref readonly var ip = ref Ipv4Header.At(packet);
        int headerLength = ip.HeaderLength;
        if (ip.Version != 4 || headerLength < Ipv4Header.Size || packet.Length < headerLength + UdpHeader.Size)
        {
            return false;
        }
        var segment = packet[headerLength..];
        ref readonly var udp = ref UdpHeader.At(segment);
        int udpLength = udp.Length;
        if (udpLength < UdpHeader.Size || udpLength > segment.Length)
        {
            return false;
        }
        datagram = new ReceivedDatagram(segment[UdpHeader.Size..udpLength], NetAddress.FromV4(ip.Source), udp.SourcePort);
        return true;
    }

    private RingConsumer Rx => _pipes?.Rx ?? throw NotBound();
    private RingProducer Tx => _pipes?.Tx ?? throw NotBound();

    private NormanException NotBound() => _disposed
        ? new NormanException("EBADF", "This socket is closed.")
        : new NormanException("EINVAL", "Bind (or Connect) the socket before sending or receiving.");

    private static long Deadline(TimeSpan? timeout) =>
        timeout is { } t ? Stopwatch.GetTimestamp() + (long)(t.TotalSeconds * Stopwatch.Frequency) : long.MaxValue;

    /// <summary>
    /// A sender's check that the daemon is alive, at most once a millisecond: a packet sent into the pipes of a dead
    /// daemon is lost as a datagram can be, and the sender hears of it within the millisecond.
    /// </summary>
    private void ThrowIfDaemonGoneLately()
    {
        long now = Stopwatch.GetTimestamp();
        if (now - _livenessCheckedAt > LivenessTicks)
        {
            _livenessCheckedAt = now;
            ThrowIfDaemonGone();
        }
    }

    private void ThrowIfDaemonGone()
    {
        if (_control.IsDaemonGone())
        {
            throw new NormanDaemonUnavailableException(
                $"The Norman daemon at {_control.Path} went away (stopped, restarted or crashed); this socket's pipes are dead. " +
                "Call Reconnect(timeout) to bind it again once the daemon is back, or open a new one.");
        }
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_disposed, this);

    /// <summary>Closes the socket: the daemon frees its port and memory at once.</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        _pipes?.Close(_control);
        _pipes = null;
        _control.Release();
    }
}
