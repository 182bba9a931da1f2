namespace Norman.Client.Tcp;

/// <summary>
/// What a <see cref="TcpConnection"/> needs of whatever carries its segments: the <see cref="TcpEndpoint"/> over a
/// socket's pipes in an application, or a scripted peer in the TCP stack's own tests (segments in, segments out, a
/// clock the test moves). Called on the protocol's thread, but for <see cref="Wake"/>.
/// </summary>
internal interface ITcpCarrier
{
    /// <summary>The local address of a connection to <paramref name="remote"/> (the host's of its family), and the socket's port.</summary>
    Norman.Core.Packets.NetAddress LocalAddressFor(Norman.Core.Packets.NetAddress remote);
    ushort LocalPort { get; }

    /// <summary>The stack's clock (Stopwatch ticks): the real one, or the test's.</summary>
    long Now { get; }

    /// <summary>The congestion control its connections use (the socket's choice, as Linux's TCP_CONGESTION).</summary>
    TcpCongestionControl CongestionControl { get; }

    /// <summary>The most a connection may advertise (the RX pipe's room in full segments).</summary>
    int WindowCap { get; }

    /// <summary>Puts a segment out: headers, options, then payload bytes from the connection's send buffer; false when there is no room now.</summary>
    bool Transmit(TcpConnection connection, Norman.Core.Packets.TcpSegmentFields fields, ReadOnlySpan<byte> options, int payloadOffset, int payloadLength);

    /// <summary>An application thread asks for the connection to be served (bytes to send, FIN, a window update).</summary>
    void Wake(TcpConnection connection);

    /// <summary>The connection has a timer running: check it.</summary>
    void Timed(TcpConnection connection);

    /// <summary>A passive open completed: the connection waits to be accepted.</summary>
    void Accepted(TcpConnection connection);

    /// <summary>The connection is closed: forget it.</summary>
    void Forget(TcpConnection connection);

    /// <summary>
    /// Whether a challenge ACK (RFC 5961) may go now: at most <see cref="TcpLimits.ChallengeAcksPerSecond"/> a second
    /// for all the carrier's connections together, as Linux's tcp_challenge_ack_limit, so that an attacker cannot
    /// learn from their count which guesses came close.
    /// </summary>
    bool TakeChallengeAck(long now);
}
