using System.Buffers.Binary;

namespace Norman.Daemon.Policy.Bpf;

/// <summary>
/// Runs a classic BPF program over a packet, instruction by instruction, with libpcap's bpf_filter semantics:
/// unsigned arithmetic, a load past the captured bytes or a division by zero rejects (returns 0). It exists to
/// check the compiled code in tests, and (with a mask of the bytes known) to find what a program decides from a few
/// header bytes alone (<see cref="ProtocolVerdicts"/>); the dataplane runs <see cref="BpfCompiler"/>'s output.
/// </summary>
public static class BpfInterpreter
{
    public static uint Run(BpfProgram program, ReadOnlySpan<byte> packet, int wireLength) =>
        Run(program, packet, wireLength, [], out _);

    /// <summary>
    /// Runs the program reading only the bytes <paramref name="known"/> marks (all of them when it is empty);
    /// <paramref name="readUnknown"/> says it needed another one (or the length), and the result then means nothing.
    /// </summary>
    public static uint Run(BpfProgram program, ReadOnlySpan<byte> packet, int wireLength, ReadOnlySpan<bool> known, out bool readUnknown)
    {
        readUnknown = false;
        var code = program.Instructions;
        Span<uint> memory = stackalloc uint[BpfCodes.MemoryWords];
        uint a = 0, x = 0;
        for (int pc = 0; ; pc++)
        {
            var i = code[pc];
            switch (i.Class)
            {
                case BpfCodes.Ld:
                    switch (i.Mode)
                    {
                        case BpfCodes.Imm: a = i.K; break;
                        case BpfCodes.Len when !known.IsEmpty:
                            readUnknown = true;
                            return 0;
                        case BpfCodes.Len: a = (uint)wireLength; break;
                        case BpfCodes.Mem: a = memory[(int)i.K]; break;
                        default:
                            long offset = i.Mode == BpfCodes.Abs ? i.K : (long)x + i.K;
                            if (!Known(known, offset, i.SizeBits == BpfCodes.W ? 4 : i.SizeBits == BpfCodes.H ? 2 : 1))
                            {
                                readUnknown = true;
                                return 0;
                            }
                            if (!Load(packet, offset, i.SizeBits, out a))
                            {
                                return 0;
                            }
                            break;
                    }
                    break;
                case BpfCodes.Ldx:
                    switch (i.Mode)
                    {
                        case BpfCodes.Imm: x = i.K; break;
                        case BpfCodes.Len when !known.IsEmpty:
                            readUnknown = true;
                            return 0;
                        case BpfCodes.Len: x = (uint)wireLength; break;
                        case BpfCodes.Mem: x = memory[(int)i.K]; break;
                        default:
                            if (!Known(known, i.K, 1))
                            {
                                readUnknown = true;
                                return 0;
                            }
                            if (i.K >= (uint)packet.Length)
                            {
                                return 0;
                            }
                            x = (uint)(packet[(int)i.K] & 0x0F) * 4;
                            break;
                    }
                    break;
                case BpfCodes.St: memory[(int)i.K] = a; break;
                case BpfCodes.Stx: memory[(int)i.K] = x; break;
                case BpfCodes.Alu:
                    uint operand = i.FromX ? x : i.K;
                    switch (i.Operation)
                    {
                        case BpfCodes.Add: a += operand; break;
                        case BpfCodes.Sub: a -= operand; break;
                        case BpfCodes.Mul: a *= operand; break;
                        case BpfCodes.Div: if (operand == 0) { return 0; } a /= operand; break;
                        case BpfCodes.Mod: if (operand == 0) { return 0; } a %= operand; break;
                        case BpfCodes.Or: a |= operand; break;
                        case BpfCodes.And: a &= operand; break;
                        case BpfCodes.Xor: a ^= operand; break;
                        case BpfCodes.Lsh: a <<= (int)operand; break;
                        case BpfCodes.Rsh: a >>= (int)operand; break;
                        case BpfCodes.Neg: a = 0 - a; break;
                    }
                    break;
                case BpfCodes.Jmp:
                    if (i.Operation == BpfCodes.Ja)
                    {
                        pc += (int)i.K;
                        break;
                    }
                    uint against = i.FromX ? x : i.K;
                    bool taken = i.Operation switch
                    {
                        BpfCodes.Jeq => a == against,
                        BpfCodes.Jgt => a > against,
                        BpfCodes.Jge => a >= against,
                        _ => (a & against) != 0,
                    };
                    pc += taken ? i.JumpTrue : i.JumpFalse;
                    break;
                case BpfCodes.Ret:
                    return (i.Code & 0x18) == BpfCodes.RetA ? a : i.K;
                case BpfCodes.Misc:
                    if ((i.Code & 0xF8) == BpfCodes.Txa)
                    {
                        a = x;
                    }
                    else
                    {
                        x = a;
                    }
                    break;
            }
        }
    }

    private static bool Known(ReadOnlySpan<bool> known, long offset, int width)
    {
        if (known.IsEmpty)
        {
            return true;
        }
        for (long b = offset; b < offset + width; b++)
        {
            if (b >= known.Length || !known[(int)b])
            {
                return false;
            }
        }
        return true;
    }

    private static bool Load(ReadOnlySpan<byte> packet, long offset, int size, out uint value)
    {
        int width = size == BpfCodes.W ? 4 : size == BpfCodes.H ? 2 : 1;
        if (offset + width > packet.Length)
        {
            value = 0;
            return false;
        }
        var at = packet[(int)offset..];
        value = width == 4 ? BinaryPrimitives.ReadUInt32BigEndian(at) : width == 2 ? BinaryPrimitives.ReadUInt16BigEndian(at) : at[0];
        return true;
    }
}
