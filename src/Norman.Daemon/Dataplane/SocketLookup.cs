using System.Runtime.CompilerServices;
using Norman.Core.Packets;

namespace Norman.Daemon.Dataplane;

/// <summary>
/// Which socket a datagram to this host belongs to, as the kernel's UDP lookup decides: a connected socket's
/// 5-tuple first, then a socket bound to the destination address, then one bound to the wildcard. Counts per local
/// port which kinds of socket exist, so that a datagram to a port with only a wildcard listener (the common server)
/// costs one table lookup instead of three. Owned by the dataplane thread.
/// </summary>
public sealed class SocketLookup(int initialCapacity)
{
    private static readonly NetAddress AnyV4 = NetAddress.FromV4(0);
    private readonly FlowTable _flows = new(initialCapacity);
    private readonly int[] _connectedOnPort = new int[ushort.MaxValue + 1];
    private readonly int[] _addressBoundOnPort = new int[ushort.MaxValue + 1];

    public int Count => _flows.Count;

    public void Add(in FlowKey key, int slot)
    {
        if (!_flows.TryGet(key, out _))
        {
            Tally(key, +1);
        }
        _flows.Set(key, slot);
    }

    public void Remove(in FlowKey key)
    {
        if (_flows.Remove(key))
        {
            Tally(key, -1);
        }
    }

    /// <summary>The socket slot for a datagram from source to destination; false when no socket takes it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryFind(byte protocol, NetAddress destination, ushort destinationPort, NetAddress source, ushort sourcePort, out int slot)
    {
        slot = -1;
        return (_connectedOnPort[destinationPort] > 0 && _flows.TryGet(new FlowKey(protocol, destination, destinationPort, source, sourcePort), out slot))
            || (_addressBoundOnPort[destinationPort] > 0 && _flows.TryGet(FlowKey.Listener(protocol, destination, destinationPort), out slot))
            || _flows.TryGet(FlowKey.Listener(protocol, AnyV4, destinationPort), out slot);
    }

    private void Tally(in FlowKey key, int change)
    {
        if (key.RemotePort != 0 || key.RemoteAddress != default)
        {
            _connectedOnPort[key.LocalPort] += change;
        }
        else if (key.LocalAddress != AnyV4)
        {
            _addressBoundOnPort[key.LocalPort] += change;
        }
        // A wildcard listener is looked up last, always: it needs no count.
    }
}
