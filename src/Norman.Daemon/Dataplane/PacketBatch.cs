using Norman.Core.Packets;

namespace Norman.Daemon.Dataplane;

/// <summary>
/// Up to <see cref="Capacity"/> frames in the dataplane's own pinned memory, with their lengths and parse results.
/// A plain fixed structure like BESS's: stages walk it by index, nothing is allocated per packet.
/// </summary>
public sealed class PacketBatch
{
    public const int Capacity = 32;
    /// <summary>Room for an Ethernet header, two VLAN tags and the largest packet a pipe slot holds.</summary>
    public const int FrameSize = 2048 + 64;

    private readonly byte[] _memory = GC.AllocateArray<byte>(Capacity * FrameSize, pinned: true);
    private readonly int[] _lengths = new int[Capacity];
    private readonly ParsedPacket[] _parsed = new ParsedPacket[Capacity];
    private readonly FrameState[] _state = new FrameState[Capacity];

    /// <summary>What the stages have said of a frame, side by side: <see cref="Append"/> resets it with one store.</summary>
    private struct FrameState
    {
        public long DecidingRule;
        public int SocketSlot;
        public bool Done;
        public bool ChecksumTrusted;
        public byte FilterVerdict;
        public DropReason DropReason;

        public static readonly FrameState Fresh = new() { SocketSlot = -1 };
    }

    public int Count { get; private set; }
    public bool IsFull => Count == Capacity;

    /// <summary>The whole buffer of frame i, to write a frame into before <see cref="Append"/>.</summary>
    public Span<byte> Buffer(int index) => _memory.AsSpan(index * FrameSize, FrameSize);

    /// <summary>The next free buffer.</summary>
    public Span<byte> NextBuffer() => Buffer(Count);

    /// <summary>Accepts the frame written into <see cref="NextBuffer"/>.</summary>
    public void Append(int length)
    {
        _lengths[Count] = length;
        _state[Count] = FrameState.Fresh;
        Count++;
    }

    /// <summary>True once a stage has finished with the packet (dropped it, or answered it itself); later stages skip it.</summary>
    public bool IsDone(int index) => _state[index].Done;

    public void MarkDone(int index) => _state[index].Done = true;

    /// <summary>Finishes with a packet the dataplane drops, remembering why, for a capture at the port (and counting nothing: the caller counts).</summary>
    public void MarkDropped(int index, DropReason reason)
    {
        ref var state = ref _state[index];
        state.DropReason = reason;
        state.Done = true;
    }

    /// <summary>Why the packet was dropped; None for one delivered, answered, or still on its way.</summary>
    public DropReason DropReasonOf(int index) => _state[index].DropReason;

    /// <summary>
    /// True when the port vouches for the frame's transport checksum (the kernel verified it, or the frame was made
    /// on this host with the checksum left to offload), as the kernel's CHECKSUM_UNNECESSARY/PARTIAL say.
    /// </summary>
    public bool IsChecksumTrusted(int index) => _state[index].ChecksumTrusted;

    public void MarkChecksumTrusted(int index) => _state[index].ChecksumTrusted = true;

    /// <summary>What the filter did with a packet it stopped (0: it did not; 1: dropped; 2: rejected), and the rule's handle (0: the policy).</summary>
    public byte FilterVerdict(int index) => _state[index].FilterVerdict;

    public long DecidingRule(int index) => _state[index].DecidingRule;

    public void MarkFiltered(int index, byte verdict, long rule, DropReason reason)
    {
        ref var state = ref _state[index];
        state.DropReason = reason;
        state.FilterVerdict = verdict;
        state.DecidingRule = rule;
        state.Done = true;
    }

    /// <summary>The socket the packet belongs to: its destination on ingress, its sender on egress; -1 for none.</summary>
    public ref int SocketSlot(int index) => ref _state[index].SocketSlot;

    /// <summary>Sets the length of a frame whose bytes a stage rewrote.</summary>
    public void SetLength(int index, int length) => _lengths[index] = length;

    public Span<byte> Frame(int index) => _memory.AsSpan(index * FrameSize, _lengths[index]);

    public int Length(int index) => _lengths[index];

    /// <summary>The frames' lengths, in order: for a stage that walks every frame's first bytes and nothing else.</summary>
    public ReadOnlySpan<int> Lengths => _lengths.AsSpan(0, Count);

    /// <summary>
    /// Every frame's buffer, one after another, <see cref="FrameSize"/> bytes apart: with <see cref="Lengths"/>, a walk
    /// over the frames' headers that checks each length once instead of building a span per frame.
    /// </summary>
    public ReadOnlySpan<byte> Buffers => _memory;

    public ref ParsedPacket Parsed(int index) => ref _parsed[index];

    public void Clear() => Count = 0;
}
