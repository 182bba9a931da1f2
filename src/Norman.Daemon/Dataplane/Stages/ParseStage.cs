using Norman.Core.Packets;

namespace Norman.Daemon.Dataplane.Stages;

/// <summary>Ingress, first stage: parse every frame; a malformed one, or one addressed to another MAC, is a counted drop.</summary>
public sealed class ParseStage(DataplaneCounters counters, HostInterface host)
{
    public void Run(PacketBatch batch)
    {
        for (int i = 0; i < batch.Count; i++)
        {
            var frame = batch.Frame(i);
            var error = PacketParser.Parse(frame, out batch.Parsed(i));
            if (error != ParseError.None)
            {
                counters.Drop((DropReason)(int)error);
                batch.MarkDone(i);
                continue;
            }
            var destination = EthernetHeader.Destination(frame);
            if (destination != host.Mac && !destination.IsBroadcast && !host.ListensTo(destination))
            {
                counters.Drop(DropReason.NotForThisHost);
                batch.MarkDone(i);
            }
        }
    }
}
