using Norman.Core.Capture;
using Norman.Daemon.Dataplane;

namespace Norman.Cli.Capture;

/// <summary>Why the dataplane dropped a captured frame, by the name `norman stats` counts it under; null when it did not.</summary>
public static class DroppedBy
{
    public static string? Of(in CaptureRecord.Packet packet) =>
        packet.Dropped == 0 ? null
        : packet.Dropped < DropReasons.Count ? DropReasons.Name((DropReason)packet.Dropped)
        : $"reason {packet.Dropped}"; // a newer daemon's reason: still shown, by number
}
