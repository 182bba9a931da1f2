using System.Runtime.CompilerServices;
using Norman.Core.Packets;

namespace Norman.Daemon.Dataplane;

/// <summary>
/// Which socket a datagram to this host belongs to, as the kernel's UDP lookup decides: a connected socket's
/// 5-tuple first, then a socket bound to the destination address, then one bound to the wildcard of its family — and
/// for IPv4, last, a dual-stack socket bound to :: (Linux's IPV6_V6ONLY off, its default), which takes IPv4 as
/// v4-mapped addresses. Counts per local port which kinds of socket exist, so that a datagram to a port with only a
/// wildcard listener (the common server) costs one table lookup instead of three. Sockets bound with SO_REUSEPORT to
/// the same address and port form a group that shares one key; a datagram goes to the member its source chooses (a
/// hash of address and port, so one sender's datagrams keep to one member while the group stands), as Linux's
/// reuseport groups spread a server's load over its threads. Owned by the dataplane thread.
/// </summary>
public sealed class SocketLookup(int initialCapacity)
{
    private static readonly NetAddress AnyV4 = NetAddress.FromV4(0);
    private readonly FlowTable _flows = new(initialCapacity);
    private readonly int[] _connectedOnPort = new int[ushort.MaxValue + 1];
    private readonly int[] _addressBoundOnPort = new int[ushort.MaxValue + 1];
    private readonly int[] _dualStackOnPort = new int[ushort.MaxValue + 1];
    /// <summary>The reuseport groups' members (socket slots); a group's key holds <see cref="GroupFlag"/> + its index in the table.</summary>
    private readonly List<int[]> _groups = new();
    private readonly Stack<int> _freeGroups = new();
    /// <summary>Above every socket slot: a value at or over it names a group.</summary>
    private const int GroupFlag = 1 << 30;

    public int Count => _flows.Count;

    /// <summary>
    /// Adds a socket's key; <paramref name="dualStack"/>: a socket on :: that takes IPv4 too. With
    /// <paramref name="reusePort"/> and the key already held, the socket joins (or makes) the key's group; otherwise
    /// the key is the socket's.
    /// </summary>
    public void Add(in FlowKey key, int slot, bool dualStack = false, bool reusePort = false)
    {
        if (!_flows.TryGet(key, out int held))
        {
            Tally(key, +1, dualStack);
            _flows.Set(key, slot);
            return;
        }
        if (!reusePort || held == slot)
        {
            _flows.Set(key, slot);
            return;
        }
        if (held < GroupFlag)
        {
            _flows.Set(key, GroupFlag + NewGroup([held, slot]));
            return;
        }
        _groups[held - GroupFlag] = [.. _groups[held - GroupFlag], slot];
    }

    /// <summary>Removes a socket's key, or with <paramref name="slot"/> only that socket from the key's group.</summary>
    public void Remove(in FlowKey key, bool dualStack = false, int slot = -1)
    {
        if (slot >= 0 && _flows.TryGet(key, out int held) && held >= GroupFlag)
        {
            int group = held - GroupFlag;
            var members = Array.FindAll(_groups[group], member => member != slot);
            if (members.Length > 1)
            {
                _groups[group] = members;
                return;
            }
            _groups[group] = [];
            _freeGroups.Push(group);
            if (members.Length == 1)
            {
                _flows.Set(key, members[0]);
                return;
            }
        }
        if (_flows.Remove(key))
        {
            Tally(key, -1, dualStack);
        }
    }

    private int NewGroup(int[] members)
    {
        if (_freeGroups.TryPop(out int group))
        {
            _groups[group] = members;
            return group;
        }
        _groups.Add(members);
        return _groups.Count - 1;
    }

    /// <summary>The member of a group a datagram from this source goes to.</summary>
    private int Member(int held, NetAddress source, ushort sourcePort)
    {
        var members = _groups[held - GroupFlag];
        ulong hash = ((source.High ^ source.Low) * 0x9E3779B97F4A7C15UL) ^ (sourcePort * 0xC2B2AE3D27D4EB4FUL);
        return members[(int)((hash >> 32) % (ulong)members.Length)];
    }

    /// <summary>The socket slot for a datagram from source to destination; false when no socket takes it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryFind(byte protocol, NetAddress destination, ushort destinationPort, NetAddress source, ushort sourcePort, out int slot)
    {
        slot = -1;
        bool v4 = destination.IsV4;
        bool found = (_connectedOnPort[destinationPort] > 0 && _flows.TryGet(new FlowKey(protocol, destination, destinationPort, source, sourcePort), out slot))
            || (_addressBoundOnPort[destinationPort] > 0 && _flows.TryGet(FlowKey.Listener(protocol, destination, destinationPort), out slot))
            || _flows.TryGet(FlowKey.Listener(protocol, v4 ? AnyV4 : HostInterface.AnyV6, destinationPort), out slot)
            || (v4 && _dualStackOnPort[destinationPort] > 0 && _flows.TryGet(FlowKey.Listener(protocol, HostInterface.AnyV6, destinationPort), out slot));
        if (found && slot >= GroupFlag)
        {
            slot = Member(slot, source, sourcePort);
        }
        return found;
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
