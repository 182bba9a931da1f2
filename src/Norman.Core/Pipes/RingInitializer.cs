namespace Norman.Core.Pipes;

/// <summary>Writes a ring's descriptor into freshly zeroed shared memory; the daemon does it once at creation.</summary>
public static unsafe class RingInitializer
{
    public static void Initialize(byte* ring, int slotCount, int slotSize)
    {
        *(uint*)(ring + PipeLayout.MagicOffset) = PipeLayout.Magic;
        *(uint*)(ring + PipeLayout.VersionOffset) = PipeLayout.Version;
        *(uint*)(ring + PipeLayout.SlotCountOffset) = (uint)slotCount;
        *(uint*)(ring + PipeLayout.SlotSizeOffset) = (uint)slotSize;
    }

    /// <summary>Checks a ring's descriptor against what the control message announced (the client's side of the handshake).</summary>
    public static bool Matches(byte* ring, int slotCount, int slotSize) =>
        *(uint*)(ring + PipeLayout.MagicOffset) == PipeLayout.Magic
        && *(uint*)(ring + PipeLayout.VersionOffset) == PipeLayout.Version
        && *(uint*)(ring + PipeLayout.SlotCountOffset) == (uint)slotCount
        && *(uint*)(ring + PipeLayout.SlotSizeOffset) == (uint)slotSize;
}
