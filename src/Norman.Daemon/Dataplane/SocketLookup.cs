using System.Runtime.CompilerServices;
using Norman.Core.Packets;

namespace Norman.Daemon.Dataplane;

/// <summary>
/// Which socket a datagram to this host belongs to, as the kernel's UDP lookup decides: a connected socket's
/// 5-tuple first, then a socket bound to the destination address, then one bound to the wildcard of its family — and
/// for IPv4, last, a dual-stack socket bound to :: (Linux's IPV6_V6ONLY off, its default), which takes IPv4 as
/// v4-mapped addresses. Counts per local port which kinds of socket exist, so that a datagram to a port with only a
/// wildcard listener (the common server) costs one table lookup instead of three. Owned by the dataplane thread.
/// </summary>
public sealed class SocketLookup(int initialCapacity)
{
    private static readonly NetAddress AnyV4 = NetAddress.FromV4(0);
    private readonly FlowTable _flows = new(initialCapacity);
    private readonly int[] _connectedOnPort = new int[ushort.MaxValue + 1];
    private readonly int[] _addressBoundOnPort = new int[ushort.MaxValue + 1];
    private readonly int[] _dualStackOnPort = new int[ushort.MaxValue + 1];

    public int Count => _flows.Count;

    /// <summary>Adds a socket's key; <paramref name="dualStack"/>: a socket on :: that takes IPv4 too.</summary>
    public void Add(in FlowKey key, int slot, bool dualStack = false)
    {
        if (!_flows.TryGet(key, out _))
        {
            Tally(key, +1, dualStack);
        }
        _flows.Set(key, slot);
    }

    public void Remove(in FlowKey key, bool dualStack = false)
    {
        if (_flows.Remove(key))
        {
            Tally(key, -1, dualStack);
        }
    }

    /// <summary>The socket slot for a datagram from source to destination; false when no socket takes it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryFind(byte protocol, NetAddress destination, ushort destinationPort, NetAddress source, ushort sourcePort, out int slot)
    {
        slot = -1;
        bool v4 = destination.IsV4;
        return (_connectedOnPort[destinationPort] > 0 && _flows.TryGet(new FlowKey(protocol, destination, destinationPort, source, sourcePort), out slot))
            || (_addressBoundOnPort[destinationPort] > 0 && _flows.TryGet(FlowKey.Listener(protocol, destination, destinationPort), out slot))
            || _flows.TryGet(FlowKey.Listener(protocol, v4 ? AnyV4 : HostInterface.AnyV6, destinationPort), out slot)
            || (v4 && _dualStackOnPort[destinationPort] > 0 && _flows.TryGet(FlowKey.Listener(protocol, HostInterface.AnyV6, destinationPort), out slot));
    }

    private void Tally(in FlowKey key, int change, bool dualStack)
    {
        if (key.RemotePort != 0 || key.RemoteAddress != default)
        {
            _connectedOnPort[key.LocalPort] += change;
        }
        else if (key.LocalAddress != AnyV4 && key.LocalAddress != HostInterface.AnyV6)
        {
            _addressBoundOnPort[key.LocalPort] += change;
        }
        else if (dualStack && key.LocalAddress == HostInterface.AnyV6)
        {
            _dualStackOnPort[key.LocalPort] += change;
        }
        // Otherwise a wildcard listener of the packet's own family, looked up always: it needs no count.
    }
}
