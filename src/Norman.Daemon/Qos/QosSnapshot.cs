using Norman.Core.Packets;
using Norman.Daemon.Dataplane;
using Norman.Daemon.Policy;

namespace Norman.Daemon.Qos;

/// <summary>
/// The QoS policy at one moment, compiled: the classes (the default one included) and the matches that choose a
/// socket's class, first match wins. The control plane builds one and publishes it with one reference store; from
/// then on it is the dataplane's. Its classes run their token buckets; the scheduler's per-breath lists are the
/// scheduler's, and start afresh when it adopts a new snapshot.
/// </summary>
public sealed class QosSnapshot
{
    /// <summary>
    /// The default class alone, for an engine no QoS store has spoken to yet. A new one each call: its class's token
    /// buckets and deficit are one dataplane's, so two engines (two daemons, or tests, in one process) must never share one.
    /// </summary>
    public static QosSnapshot DefaultOnly() => new(0, [new ClassState(new TrafficClass(), 0, new ClassCounters())], []);

    private readonly (CompiledRule Rule, int Class)[] _matches;

    public QosSnapshot(long generation, ClassState[] classes, (CompiledRule Rule, int Class)[] matches)
    {
        Generation = generation;
        Classes = classes;
        _matches = matches;
        DefaultIndex = Array.FindIndex(classes, c => c.Settings.Name == TrafficClass.DefaultName);
        Polices = classes.Any(c => c.Polices);
        for (int band = 0; band < TrafficClass.Bands; band++)
        {
            _classesInBand[band] = classes.Count(c => c.Band == band);
        }
    }

    private readonly int[] _classesInBand = new int[TrafficClass.Bands];

    /// <summary>How many of the classes are in <paramref name="band"/>.</summary>
    public int ClassesInBand(int band) => _classesInBand[band];

    public long Generation { get; }
    public ClassState[] Classes { get; }
    public int DefaultIndex { get; }
    /// <summary>Some class polices what it receives.</summary>
    public bool Polices { get; }

    /// <summary>
    /// The socket's class: the first match that its owner, ports and addresses satisfy, seen as its packets leave,
    /// with the DSCP <paramref name="dscp"/> (that of the first packet looked at in the direction at hand).
    /// Called on the dataplane thread once per socket, direction and generation.
    /// </summary>
    public int Classify(PipeSocket socket, NetAddress hostAddress, byte dscp = 0)
    {
        var view = new ParsedPacket
        {
            Kind = socket.Protocol == Norman.Core.Packets.IpProtocols.Tcp ? Norman.Core.Packets.PacketKind.Tcp : Norman.Core.Packets.PacketKind.Udp,
            IpVersion = 4,
            Dscp = dscp,
            Protocol = socket.Protocol,
            Source = socket.LocalAddress.IsUnspecified ? hostAddress : socket.LocalAddress,
            SourcePort = socket.LocalPort,
            Destination = socket.RemoteAddress,
            DestinationPort = socket.RemotePort,
        };
        for (int m = 0; m < _matches.Length; m++)
        {
            if (_matches[m].Rule.Matches([], view, socket, ConnectionState.None))
            {
                return _matches[m].Class;
            }
        }
        return DefaultIndex;
    }

    /// <summary>The class that schedules what the socket sends; chosen, if the policy changed, by the head of its TX pipe.</summary>
    public ClassState SendingClassOf(PipeSocket socket, NetAddress hostAddress) => Classes[
        socket.SendingQos.Generation == Generation ? socket.SendingQos.Class
        : Choose(ref socket.SendingQos, socket, hostAddress, socket.HeadDscp())];

    /// <summary>The class that polices what the socket receives; chosen, if the policy changed, by the packet in hand.</summary>
    public ClassState ReceivingClassOf(PipeSocket socket, NetAddress hostAddress, byte dscp) => Classes[
        socket.ReceivingQos.Generation == Generation ? socket.ReceivingQos.Class
        : Choose(ref socket.ReceivingQos, socket, hostAddress, dscp)];

    private int Choose(ref QosChoice choice, PipeSocket socket, NetAddress hostAddress, byte dscp)
    {
        choice = new QosChoice(Classify(socket, hostAddress, dscp), Generation);
        return choice.Class;
    }
}
