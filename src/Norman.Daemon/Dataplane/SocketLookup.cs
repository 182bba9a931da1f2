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
/// reuseport groups spread a server's load over its threads. A TCP connection must keep to its member even when the
/// group changes (a server's second instance starting beside the first): Linux finds it by its own established
/// socket first; here the opening SYN pins the connection's 4-tuple to the member it chose (see PinnedMember), and a
/// connection made before the group was stays with the group's first member. Owned by the dataplane thread.
/// </summary>
public sealed class SocketLookup(int initialCapacity)
{
    private static readonly NetAddress AnyV4 = NetAddress.FromV4(0);
    private readonly FlowTable _flows = new(initialCapacity);
    private readonly int[] _connectedOnPort = new int[ushort.MaxValue + 1];
    private readonly int[] _addressBoundOnPort = new int[ushort.MaxValue + 1];
    private readonly int[] _dualStackOnPort = new int[ushort.MaxValue + 1];
    /// <summary>The reuseport groups (their sockets' slots); a group's key holds <see cref="GroupFlag"/> + its index in the table.</summary>
    private readonly List<Group> _groups = new();

    /// <summary>
    /// A reuseport group: its members, and those that take new connections (<see cref="Accepting"/>, made from the
    /// members and <see cref="_stoppedListening"/> whenever either changes). Arrays replaced whole, never changed in place.
    /// </summary>
    private sealed class Group(int[] members)
    {
        public int[] Members = members;
        public int[] Accepting = members;
    }

    /// <summary>
    /// TCP listeners (by slot) that stopped listening but still hold connections: in a group, or in one formed later
    /// (a server's second instance started after the first stopped), they take no new connections.
    /// </summary>
    private readonly HashSet<int> _stoppedListening = new();
    private readonly Stack<int> _freeGroups = new();
    /// <summary>Above every socket slot: a value at or over it names a group.</summary>
    private const int GroupFlag = 1 << 30;

    /// <summary>
    /// TCP connections pinned to the reuseport member their SYN chose: made with the first TCP group (5 MB, by a
    /// command, never while forwarding) and sized once, so it never grows on the dataplane.
    /// </summary>
    private FlowTable? _pins;

    /// <summary>Connections to reuseport groups that can be pinned at once; past it new ones follow the hash alone (<see cref="PinsFull"/>).</summary>
    public const int MaxPins = 1 << 16;

    /// <summary>TCP connections pinned to their reuseport member now.</summary>
    public int Pins => _pins?.Count ?? 0;

    /// <summary>SYNs to a reuseport group that found the pins full of live connections: such a connection is not pinned.</summary>
    public long PinsFull { get; private set; }

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
        if (key.Protocol == IpProtocols.Tcp)
        {
            _pins ??= new FlowTable(16, MaxPins);
        }
        if (held < GroupFlag)
        {
            _flows.Set(key, GroupFlag + NewGroup([held, slot]));
            return;
        }
        SetMembers(_groups[held - GroupFlag], [.. _groups[held - GroupFlag].Members, slot]);
    }

    /// <summary>A TCP listener stops listening: no new connections go to it in its group (now or later), its own stay with it.</summary>
    public void StopAccepting(in FlowKey key, int slot)
    {
        _stoppedListening.Add(slot);
        if (_flows.TryGet(key, out int held) && held >= GroupFlag)
        {
            SetMembers(_groups[held - GroupFlag], _groups[held - GroupFlag].Members);
        }
    }

    private void SetMembers(Group group, int[] members)
    {
        group.Members = members;
        group.Accepting = Array.FindAll(members, member => !_stoppedListening.Contains(member));
    }

    /// <summary>Removes a socket's key, or with <paramref name="slot"/> only that socket from the key's group.</summary>
    public void Remove(in FlowKey key, bool dualStack = false, int slot = -1)
    {
        _stoppedListening.Remove(slot); // the slot may serve another socket next
        if (slot >= 0 && _flows.TryGet(key, out int held) && held >= GroupFlag)
        {
            int group = held - GroupFlag;
            var members = Array.FindAll(_groups[group].Members, member => member != slot);
            if (members.Length > 1)
            {
                SetMembers(_groups[group], members);
                return;
            }
            _groups[group] = new Group([]);
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
        var made = new Group(members);
        SetMembers(made, members);
        if (_freeGroups.TryPop(out int group))
        {
            _groups[group] = made;
            return group;
        }
        _groups.Add(made);
        return _groups.Count - 1;
    }

    /// <summary>The member of a group a datagram (a new connection) from this source goes to: one that takes new ones, if any does.</summary>
    private int Member(int held, NetAddress source, ushort sourcePort)
    {
        var group = _groups[held - GroupFlag];
        var members = group.Accepting.Length > 0 ? group.Accepting : group.Members;
        ulong hash = ((source.High ^ source.Low) * 0x9E3779B97F4A7C15UL) ^ (sourcePort * 0xC2B2AE3D27D4EB4FUL);
        return members[(int)((hash >> 32) % (ulong)members.Length)];
    }

    /// <summary>
    /// The socket slot for a packet from source to destination; false when no socket takes it. <paramref name="tcpFlags"/>:
    /// a TCP segment's flags, which pin its connection to a reuseport member (SYN) or let go of it (FIN, RST).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryFind(byte protocol, NetAddress destination, ushort destinationPort, NetAddress source, ushort sourcePort, out int slot,
        byte tcpFlags = 0)
    {
        slot = -1;
        bool v4 = destination.IsV4;
        bool found = (_connectedOnPort[destinationPort] > 0 && _flows.TryGet(new FlowKey(protocol, destination, destinationPort, source, sourcePort), out slot))
            || (_addressBoundOnPort[destinationPort] > 0 && _flows.TryGet(FlowKey.Listener(protocol, destination, destinationPort), out slot))
            || _flows.TryGet(FlowKey.Listener(protocol, v4 ? AnyV4 : HostInterface.AnyV6, destinationPort), out slot)
            || (v4 && _dualStackOnPort[destinationPort] > 0 && _flows.TryGet(FlowKey.Listener(protocol, HostInterface.AnyV6, destinationPort), out slot));
        if (found && slot >= GroupFlag)
        {
            slot = protocol == IpProtocols.Tcp
                ? PinnedMember(slot, new FlowKey(protocol, destination, destinationPort, source, sourcePort), tcpFlags)
                : Member(slot, source, sourcePort);
        }
        return found;
    }

    /// <summary>
    /// The member of a TCP reuseport group a segment goes to: its connection's pin while that member is in the group;
    /// else, for a SYN that opens a connection, the hash's choice among the members taking new ones, pinned; else the
    /// group's first member, the listener that held every connection made before the group was (those have no pin).
    /// A FIN from the peer marks the pin closing (the last ACK still needs it); an RST removes it; closing pins are
    /// swept when the table fills.
    /// </summary>
    private int PinnedMember(int held, in FlowKey connection, byte tcpFlags)
    {
        var pins = _pins!; // made with the first TCP group
        var group = _groups[held - GroupFlag];
        bool pinned = pins.TryGet(connection, out int value) && Array.IndexOf(group.Members, value & ~ClosingPin) >= 0;
        if (pinned)
        {
            if ((tcpFlags & TcpHeader.Rst) != 0)
            {
                pins.Remove(connection);
            }
            else if ((tcpFlags & TcpHeader.Fin) != 0 && (value & ClosingPin) == 0)
            {
                pins.Set(connection, value | ClosingPin);
            }
            return value & ~ClosingPin;
        }
        if ((tcpFlags & (TcpHeader.Syn | TcpHeader.Ack | TcpHeader.Rst)) != TcpHeader.Syn)
        {
            return group.Members[0];
        }
        int member = Member(held, connection.RemoteAddress, connection.RemotePort);
        Pin(connection, member);
        return member;
    }

    /// <summary>
    /// Pins a TCP connection of a reuseport group to the member at <paramref name="slot"/>, in place of any earlier pin
    /// (one to a member that left, or that handed the connection over); nothing before the port has a group (its pins
    /// table is made with the first). Past <see cref="MaxPins"/> live connections the pin is not made (<see cref="PinsFull"/>):
    /// the connection follows the group's first member when not a SYN.
    /// </summary>
    public void Pin(in FlowKey connection, int slot)
    {
        if (_pins is not { } pins)
        {
            return;
        }
        pins.Remove(connection);
        if (!pins.TryAdd(connection, slot))
        {
            SweepClosing(pins);
            if (!pins.TryAdd(connection, slot))
            {
                PinsFull++;
            }
        }
    }

    /// <summary>A pin whose connection's peer sent its FIN: kept for the last ACK, dropped when the table fills.</summary>
    private const int ClosingPin = 1 << 29;

    /// <summary>Removes the closing pins, in place (a removal may shift a later entry into the slot just looked at).</summary>
    private static void SweepClosing(FlowTable pins)
    {
        int slot = 0;
        while (slot < pins.Capacity)
        {
            if (pins.TryGetSlot(slot, out var key, out int value) && (value & ClosingPin) != 0)
            {
                pins.Remove(key);
                continue;
            }
            slot++;
        }
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
