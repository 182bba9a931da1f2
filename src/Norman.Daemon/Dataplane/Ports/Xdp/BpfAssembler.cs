namespace Norman.Daemon.Dataplane.Ports.Xdp;

/// <summary>
/// Writes eBPF instructions (the kernel's <c>struct bpf_insn</c>: opcode, two registers, a 16-bit offset and a 32-bit
/// immediate) with named jump targets, for the few small programs Norman loads: a program of tens of instructions
/// does not need clang and libbpf at build time, and this keeps every byte of it in view.
/// </summary>
public sealed class BpfAssembler
{
    // Classes, sizes, modes, operations and sources, as linux/bpf_common.h and linux/bpf.h number them.
    private const byte Ld = 0x00, Ldx = 0x01, St = 0x02, Stx = 0x03, Alu = 0x04, Jmp = 0x05, Jmp32 = 0x06, Alu64 = 0x07;
    private const byte SizeW = 0x00, SizeH = 0x08, SizeB = 0x10, SizeDw = 0x18;
    private const byte ModeImm = 0x00, ModeMem = 0x60, ModeAtomic = 0xc0;
    private const byte OpAdd = 0x00, OpAnd = 0x50, OpLsh = 0x60, OpMov = 0xb0, OpEnd = 0xd0, ToBigEndian = 0x08;
    private const byte SourceK = 0x00, SourceX = 0x08;
    private const byte JumpAlways = 0x00, JumpEq = 0x10, JumpGt = 0x20, JumpNe = 0x50, Call = 0x80, Exit = 0x90;
    /// <summary>ld_imm64's source register when its immediate is a map's descriptor (BPF_PSEUDO_MAP_FD).</summary>
    private const byte PseudoMapFd = 1;

    private readonly List<ulong> _code = new();
    private readonly Dictionary<string, int> _labels = new();
    private readonly List<(int At, string Label)> _jumps = new();

    public enum Size : byte { Byte = SizeB, Half = SizeH, Word = SizeW, Double = SizeDw }

    private void Emit(byte code, int dst, int src, short offset, int immediate) =>
        _code.Add(code | (ulong)(byte)(dst | src << 4) << 8 | (ulong)(ushort)offset << 16 | (ulong)(uint)immediate << 32);

    public void Label(string name) => _labels.Add(name, _code.Count);

    public void MovImm(int dst, int value) => Emit(Alu64 | OpMov | SourceK, dst, 0, 0, value);
    public void Mov(int dst, int src) => Emit(Alu64 | OpMov | SourceX, dst, src, 0, 0);
    public void AddImm(int dst, int value) => Emit(Alu64 | OpAdd | SourceK, dst, 0, 0, value);
    public void AndImm(int dst, int value) => Emit(Alu64 | OpAnd | SourceK, dst, 0, 0, value);
    public void And(int dst, int src) => Emit(Alu64 | OpAnd | SourceX, dst, src, 0, 0);
    public void LshImm(int dst, int bits) => Emit(Alu64 | OpLsh | SourceK, dst, 0, 0, bits);

    /// <summary>Converts the low <paramref name="bits"/> of a register from network order (a no-op on big-endian hosts).</summary>
    public void FromNetworkOrder(int dst, int bits) => Emit(Alu | OpEnd | ToBigEndian, dst, 0, 0, bits);

    /// <summary>dst = *(size*)(src + offset).</summary>
    public void Load(Size size, int dst, int src, short offset) => Emit((byte)(Ldx | ModeMem | (byte)size), dst, src, offset, 0);

    /// <summary>*(size*)(dst + offset) = src.</summary>
    public void Store(Size size, int dst, short offset, int src) => Emit((byte)(Stx | ModeMem | (byte)size), dst, src, offset, 0);

    /// <summary>*(size*)(dst + offset) = value.</summary>
    public void StoreImm(Size size, int dst, short offset, int value) => Emit((byte)(St | ModeMem | (byte)size), dst, 0, offset, value);

    /// <summary>*(u64*)(dst + offset) += src, atomically (BPF_ATOMIC with BPF_ADD).</summary>
    public void AtomicAdd64(int dst, short offset, int src) => Emit(Stx | ModeAtomic | SizeDw, dst, src, offset, OpAdd);

    /// <summary>A 64-bit constant (two instruction slots).</summary>
    public void LoadImm64(int dst, ulong value)
    {
        Emit(Ld | SizeDw | ModeImm, dst, 0, 0, (int)(uint)value);
        Emit(0, 0, 0, 0, (int)(uint)(value >> 32));
    }

    /// <summary>A map's address, from its descriptor (the kernel rewrites it at load).</summary>
    public void LoadMap(int dst, int mapFd)
    {
        Emit(Ld | SizeDw | ModeImm, dst, PseudoMapFd, 0, mapFd);
        Emit(0, 0, 0, 0, 0);
    }

    public void Jump(string label) => JumpTo(Jmp | JumpAlways, 0, 0, 0, label);
    // Compares with an immediate look at the low 32 bits (JMP32): a 64-bit compare would sign-extend the immediate, so
    // an address such as 198.18.0.1 (0xC6... read from the packet) could never be equal to it.
    public void JumpIfEqualImm(int register, uint value, string label) => JumpTo(Jmp32 | JumpEq | SourceK, register, 0, (int)value, label);
    public void JumpIfNotEqualImm(int register, uint value, string label) => JumpTo(Jmp32 | JumpNe | SourceK, register, 0, (int)value, label);
    /// <summary>A 64-bit test against zero: the one the verifier reads as a null check of a map lookup's result.</summary>
    public void JumpIfZero(int register, string label) => JumpTo(Jmp | JumpEq | SourceK, register, 0, 0, label);
    public void JumpIfEqual(int register, int other, string label) => JumpTo(Jmp | JumpEq | SourceX, register, other, 0, label);
    public void JumpIfNotEqual(int register, int other, string label) => JumpTo(Jmp | JumpNe | SourceX, register, other, 0, label);
    /// <summary>Unsigned: jumps when register &gt; other (the verifier's bounds check of a packet pointer against data_end).</summary>
    public void JumpIfGreater(int register, int other, string label) => JumpTo(Jmp | JumpGt | SourceX, register, other, 0, label);

    public void CallHelper(int helper) => Emit(Jmp | Call, 0, 0, 0, helper);
    public void Return() => Emit(Jmp | Exit, 0, 0, 0, 0);

    private void JumpTo(int code, int register, int other, int value, string label)
    {
        _jumps.Add((_code.Count, label));
        Emit((byte)code, register, other, 0, value);
    }

    /// <summary>The instructions, with every jump's offset resolved (relative to the instruction after it).</summary>
    public ulong[] Assemble()
    {
        var code = _code.ToArray();
        foreach (var (at, label) in _jumps)
        {
            if (!_labels.TryGetValue(label, out int target))
            {
                throw new InvalidOperationException($"BPF program: no label '{label}'");
            }
            int offset = target - at - 1;
            code[at] = code[at] & ~(0xFFFFUL << 16) | (ulong)(ushort)(short)offset << 16;
        }
        return code;
    }
}
