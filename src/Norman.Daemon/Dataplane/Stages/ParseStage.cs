using Norman.Core.Packets;

namespace Norman.Daemon.Dataplane.Stages;

/// <summary>
/// Ingress, first stage: parse every frame; a malformed one, one longer than the MTU allows, or one addressed to
/// another MAC, is a counted drop.
/// </summary>
public sealed class ParseStage(DataplaneCounters counters, HostInterface host)
{
    /// <summary>The longest frame taken in: an IP MTU of 1500 behind an Ethernet header and two VLAN tags.</summary>
    public const int MaxFrameLength = 1500 + EthernetHeader.Size + PacketParser.MaxVlanTags * VlanTag.Size;

    public void Run(PacketBatch batch)
    {
        for (int i = 0; i < batch.Count; i++)
        {
            var frame = batch.Frame(i);
            if (frame.Length > MaxFrameLength)
            {
                // Ports hand over at most a frame buffer of a longer frame, so its length is all this can trust.
                counters.Drop(DropReason.FrameTooLong);
                batch.MarkDone(i);
                continue;
            }
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
