using System.Runtime.InteropServices;

namespace Norman.Daemon.Policy.Bpf;

/// <summary>
/// One classic BPF instruction, laid out as struct bpf_insn: u16 code, u8 jt, u8 jf, u32 k.
/// The code is class | size/op | mode/source, as in linux/filter.h.
/// </summary>
[StructLayout(LayoutKind.Sequential, Size = Size)]
public readonly record struct BpfInstruction(ushort Code, byte JumpTrue, byte JumpFalse, uint K)
{
    public const int Size = 8;

    public int Class => Code & 0x07;
    public int SizeBits => Code & 0x18;
    public int Mode => Code & 0xE0;
    public int Operation => Code & 0xF0;
    public bool FromX => (Code & 0x08) != 0;

    public override string ToString() => $"{{ 0x{Code:x2}, {JumpTrue}, {JumpFalse}, 0x{K:x8} }}";
}

/// <summary>The opcode pieces of classic BPF (linux/bpf_common.h).</summary>
public static class BpfCodes
{
    public const int Ld = 0x00, Ldx = 0x01, St = 0x02, Stx = 0x03, Alu = 0x04, Jmp = 0x05, Ret = 0x06, Misc = 0x07;
    public const int W = 0x00, H = 0x08, B = 0x10;
    public const int Imm = 0x00, Abs = 0x20, Ind = 0x40, Mem = 0x60, Len = 0x80, Msh = 0xA0;
    public const int Add = 0x00, Sub = 0x10, Mul = 0x20, Div = 0x30, Or = 0x40, And = 0x50, Lsh = 0x60, Rsh = 0x70, Neg = 0x80, Mod = 0x90, Xor = 0xA0;
    public const int Ja = 0x00, Jeq = 0x10, Jgt = 0x20, Jge = 0x30, Jset = 0x40;
    public const int RetK = 0x00, RetA = 0x10;
    public const int Tax = 0x00, Txa = 0x80;
    public const int MemoryWords = 16;
}
