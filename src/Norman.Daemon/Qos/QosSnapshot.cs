using Norman.Core.Packets;
using Norman.Daemon.Dataplane;
using Norman.Daemon.Policy;

namespace Norman.Daemon.Qos;

/// <summary>
/// The QoS policy at one moment, compiled: the classes (the default one included) and the matches that choose a
/// socket's class, first match wins. The control plane builds one and publishes it with one reference store; from
/// then on it is the dataplane's, which also keeps its per-breath scheduling state here, so a swap starts fresh.
/// </summary>
public sealed class QosSnapshot
{
    /// <summary>
    /// The default class alone, for an engine no QoS store has spoken to yet. A new one each call: a snapshot holds
    /// its dataplane's scheduling state, so two engines (two daemons, or tests, in one process) must never share one.
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
            BandClasses[band] = new int[classes.Count(c => c.Band == band)];
        }
    }

    public long Generation { get; }
    public ClassState[] Classes { get; }
    public int DefaultIndex { get; }
    /// <summary>Some class polices what it receives.</summary>
    public bool Polices { get; }

    /// <summary>Per band, this breath's classes with packets waiting (class indices) and how many.</summary>
    public int[][] BandClasses { get; } = new int[TrafficClass.Bands][];
    public int[] BandCount { get; } = new int[TrafficClass.Bands];
    /// <summary>Per band, the class whose round-robin turn a full batch interrupted, to resume there; -1 for none.</summary>
    public int[] BandResume { get; } = [-1, -1, -1, -1, -1, -1, -1, -1];

    /// <summary>
    /// The socket's class: the first match that its owner, ports and addresses satisfy, seen as its packets leave,
    /// with the DSCP its packets carry (<paramref name="dscp"/>: as the first packet looked at carried it).
    /// Called on the dataplane thread once per socket and generation.
    /// </summary>
    public int Classify(PipeSocket socket, NetAddress hostAddress, byte dscp = 0)
    {
        var view = new ParsedPacket
        {
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

    /// <summary>
    /// The socket's class for this generation, classifying it first if the policy changed since; <paramref name="dscp"/>
    /// is that of the packet in hand (the head of its TX pipe, or one it receives).
    /// </summary>
    public ClassState ClassOf(PipeSocket socket, NetAddress hostAddress, byte dscp)
    {
        if (socket.QosGeneration != Generation)
        {
            socket.QosClass = Classify(socket, hostAddress, dscp);
            socket.QosGeneration = Generation;
        }
        return Classes[socket.QosClass];
    }
}
