using Norman.Core.Protocol;

namespace Norman.Daemon.Control;

/// <summary>The QoS family: classes and their matches, shown and changed.</summary>
public sealed partial class ControlPlane
{
    private Task<int[]> OnQosShow(ControlSession session, ControlRequest request, ControlResponse response)
    {
        response.Qos = DescribeQos();
        return NoDescriptors;
    }

    private Task<int[]> OnQosChange(ControlSession session, ControlRequest request, ControlResponse response)
    {
        ChangeQos(session.Identity, request);
        response.Qos = DescribeQos();
        response.Notes = request.Op is ControlProtocol.Ops.QosAdd or ControlProtocol.Ops.QosChange or ControlProtocol.Ops.QosMatchAdd ? AppNameNotes(request.Rule) : null;
        return NoDescriptors;
    }

    private Qos.QosStore QosStore => Qos ?? throw new ControlException(ControlProtocol.Errors.Unsupported, "This daemon has no QoS.");

    private void ChangeQos(PeerIdentity caller, ControlRequest request)
    {
        var qos = QosStore;
        string who = $"{caller.ProcessName} (pid {caller.Pid}, uid {caller.Uid})";
        try
        {
            switch (request.Op)
            {
                case ControlProtocol.Ops.QosAdd or ControlProtocol.Ops.QosChange:
                    var changed = qos.AddOrChange(request.Class ?? "", request.Rule ?? [], request.Op == ControlProtocol.Ops.QosChange);
                    log.Info($"qos: {who} {(request.Op == ControlProtocol.Ops.QosAdd ? "added" : "changed")} class {changed}");
                    break;
                case ControlProtocol.Ops.QosDelete:
                    qos.DeleteClass(request.Class ?? "");
                    log.Info($"qos: {who} deleted class {request.Class}");
                    break;
                case ControlProtocol.Ops.QosMatchAdd:
                    var match = qos.AddMatch(request.Class ?? "", request.Rule ?? []);
                    log.Info($"qos: {who} added match {match} to class {match.ClassName} (handle {match.Handle})");
                    break;
                case ControlProtocol.Ops.QosMatchDelete:
                    if (!qos.DeleteMatch(request.Handle ?? -1))
                    {
                        throw new ControlException(ControlProtocol.Errors.NotFound, $"There is no match with handle {request.Handle}: `norman qos show` lists them.");
                    }
                    break;
            }
        }
        catch (Exception error) when (error is FormatException or ArgumentException)
        {
            throw new ControlException(ControlProtocol.Errors.InvalidArgument, error.Message);
        }
        catch (IOException error)
        {
            throw new ControlException(ControlProtocol.Errors.IoError, error.Message);
        }
    }

    private QosInfo DescribeQos() => new()
    {
        LineRateBits = QosStore.LineRateBits,
        Classes = QosStore.Show().Select(view => new QosClassInfo
        {
            Name = view.Class.Name,
            Spec = view.Class.ToString(),
            Band = view.Class.Band,
            Weight = view.Class.Weight,
            RateBits = view.Class.RateBits,
            CeilBits = view.Class.CeilBits,
            BurstBytes = view.Class.BurstBytes,
            Dscp = view.Class.Dscp,
            PoliceBits = view.Class.PoliceBits,
            Matches = view.Matches.Select(m => new QosMatchInfo { Handle = m.Handle, Match = m.ToString() }).ToList(),
            SentBitsPerSecond = Math.Round(view.BitsPerSecond),
            SentPacketsPerSecond = Math.Round(view.PacketsPerSecond),
            Packets = Volatile.Read(ref view.Counters.Packets),
            Bytes = Volatile.Read(ref view.Counters.Bytes),
            Drops = Volatile.Read(ref view.Counters.PolicedDrops),
            Backlog = Math.Max(0, Volatile.Read(ref view.Counters.Backlog)),
            Overlimits = Volatile.Read(ref view.Counters.Overlimits),
        }).ToList(),
    };
}
