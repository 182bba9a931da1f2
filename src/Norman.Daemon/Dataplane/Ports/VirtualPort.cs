using Norman.Core.Packets;

namespace Norman.Daemon.Dataplane.Ports;

/// <summary>
/// The embedded default port: an in-process wire at a configured line rate, with a <see cref="SimulatedPeer"/>
/// at the far end. Needs no privileges, so the demo, most tests and the benchmark run on it anywhere.
/// </summary>
public sealed class VirtualPort : IPort
{
    private readonly LineRate _toPeer;
    private readonly LineRate _fromPeer;

    public VirtualPort(SimulatedPeer peer, long lineRateBitsPerSecond)
    {
        Peer = peer;
        _toPeer = new LineRate(lineRateBitsPerSecond);
        _fromPeer = new LineRate(lineRateBitsPerSecond);
    }

    public SimulatedPeer Peer { get; }
    public string Name => "virtual";
    public long LineRateBitsPerSecond => _toPeer.BitsPerSecond;

    public int Receive(PacketBatch batch, long now)
    {
        long budget = _fromPeer.Budget(now);
        long before = budget;
        int produced = Peer.Produce(batch, ref budget, now);
        _fromPeer.ChargeWireBytes(before - budget);
        return produced;
    }

    public long TransmitBudget(long now) => _toPeer.Budget(now);

    public int Transmit(PacketBatch batch, long now)
    {
        for (int i = 0; i < batch.Count; i++)
        {
            if (batch.IsDone(i))
            {
                continue;
            }
            var frame = batch.Frame(i);
            _toPeer.Charge(frame.Length);
            Peer.Accept(frame, now);
        }
        return 0;
    }

    public void Dispose()
    {
    }
}
