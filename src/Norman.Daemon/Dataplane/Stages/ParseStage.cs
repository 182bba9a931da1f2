using Norman.Core.Packets;

namespace Norman.Daemon.Dataplane.Stages;

/// <summary>
/// Ingress, first stage: parse every frame; a malformed one, one longer than the MTU allows, one tagged with a VLAN
/// (Norman has no VLAN interfaces: a tagged frame belongs to another network), or one addressed to another MAC, is a
/// counted drop.
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
                batch.MarkDropped(i, DropReason.FrameTooLong);
                continue;
            }
            ref var parsed = ref batch.Parsed(i);
            var error = PacketParser.Parse(frame, out parsed);
            if (error != ParseError.None)
            {
                counters.Drop((DropReason)(int)error);
                batch.MarkDropped(i, (DropReason)(int)error);
                continue;
            }
            if (parsed.VlanCount != 0 && (parsed.VlanCount > 1 || parsed.VlanId != 0))
            {
                // A single tag of VLAN 0 only carries a priority (802.1p), and Linux takes it as untagged: so does this.
                counters.Drop(DropReason.VlanNotConfigured);
                batch.MarkDropped(i, DropReason.VlanNotConfigured);
                continue;
            }
            var destination = EthernetHeader.Destination(frame);
            if (destination != host.Mac && !destination.IsBroadcast && !host.ListensTo(destination))
            {
                counters.Drop(DropReason.NotForThisHost);
                batch.MarkDropped(i, DropReason.NotForThisHost);
            }
        }
    }
}
