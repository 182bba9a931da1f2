using System.Buffers.Binary;
using System.Reflection;
using System.Reflection.Emit;

namespace Norman.Daemon.Policy.Bpf;

/// <summary>A compiled filter: returns the number of bytes to keep (0 = no match), like a BPF program's return.</summary>
public unsafe delegate uint BpfFunction(byte* packet, int capturedLength, int wireLength);

/// <summary>
/// Compiles a <see cref="BpfProgram"/> to .NET IL in a DynamicMethod, so the JIT turns it into native code:
/// registers and scratch memory become locals, every BPF jump (always forward) becomes an IL branch, and every
/// packet load is bounds-checked against the captured length (out of bounds rejects, as in libpcap).
/// Semantics are <see cref="BpfInterpreter"/>'s; the tests hold the two and libpcap to the same verdicts.
/// </summary>
public static class BpfCompiler
{
    private static readonly MethodInfo Swap32 = typeof(BinaryPrimitives).GetMethod(nameof(BinaryPrimitives.ReverseEndianness), [typeof(uint)])!;
    private static readonly MethodInfo Swap16 = typeof(BinaryPrimitives).GetMethod(nameof(BinaryPrimitives.ReverseEndianness), [typeof(ushort)])!;

    public static BpfFunction Compile(BpfProgram program)
    {
        var method = new DynamicMethod($"bpf:{program.Expression}", typeof(uint), [typeof(byte*), typeof(int), typeof(int)],
            typeof(BpfCompiler).Module, skipVisibility: true);
        var il = method.GetILGenerator();
        var a = il.DeclareLocal(typeof(uint));
        var x = il.DeclareLocal(typeof(uint));
        var offset = il.DeclareLocal(typeof(long));
        var memory = new LocalBuilder[BpfCodes.MemoryWords];
        for (int m = 0; m < memory.Length; m++)
        {
            memory[m] = il.DeclareLocal(typeof(uint));
        }
        var code = program.Instructions;
        var labels = code.Select(_ => il.DefineLabel()).ToArray();
        var reject = il.DefineLabel();

        for (int pc = 0; pc < code.Length; pc++)
        {
            il.MarkLabel(labels[pc]);
            var i = code[pc];
            switch (i.Class)
            {
                case BpfCodes.Ld:
                    EmitLoad(il, i, a, x, offset, memory, reject);
                    break;
                case BpfCodes.Ldx:
                    EmitLoadX(il, i, x, memory, reject);
                    break;
                case BpfCodes.St:
                    il.Emit(OpCodes.Ldloc, a);
                    il.Emit(OpCodes.Stloc, memory[i.K]);
                    break;
                case BpfCodes.Stx:
                    il.Emit(OpCodes.Ldloc, x);
                    il.Emit(OpCodes.Stloc, memory[i.K]);
                    break;
                case BpfCodes.Alu:
                    EmitAlu(il, i, a, x, reject);
                    break;
                case BpfCodes.Jmp:
                    EmitJump(il, i, a, x, labels, pc);
                    break;
                case BpfCodes.Ret:
                    if ((i.Code & 0x18) == BpfCodes.RetA)
                    {
                        il.Emit(OpCodes.Ldloc, a);
                    }
                    else
                    {
                        il.Emit(OpCodes.Ldc_I4, unchecked((int)i.K));
                    }
                    il.Emit(OpCodes.Ret);
                    break;
                case BpfCodes.Misc:
                    bool toA = (i.Code & 0xF8) == BpfCodes.Txa;
                    il.Emit(OpCodes.Ldloc, toA ? x : a);
                    il.Emit(OpCodes.Stloc, toA ? a : x);
                    break;
            }
        }
        il.MarkLabel(reject);
        il.Emit(OpCodes.Ldc_I4_0);
        il.Emit(OpCodes.Ret);
        return method.CreateDelegate<BpfFunction>();
    }

    private static void EmitLoad(ILGenerator il, BpfInstruction i, LocalBuilder a, LocalBuilder x, LocalBuilder offset, LocalBuilder[] memory, Label reject)
    {
        switch (i.Mode)
        {
            case BpfCodes.Imm or BpfCodes.Len or BpfCodes.Mem:
                EmitRegisterSource(il, i, memory);
                break;
            default:
                int width = i.SizeBits == BpfCodes.W ? 4 : i.SizeBits == BpfCodes.H ? 2 : 1;
                // offset = k, or X + k, as a 64-bit number so that nothing wraps.
                if (i.Mode == BpfCodes.Ind)
                {
                    il.Emit(OpCodes.Ldloc, x);
                    il.Emit(OpCodes.Conv_U8);
                    il.Emit(OpCodes.Ldc_I8, (long)i.K);
                    il.Emit(OpCodes.Add);
                }
                else
                {
                    il.Emit(OpCodes.Ldc_I8, (long)i.K);
                }
                il.Emit(OpCodes.Stloc, offset);
                // if (offset + width > captured) reject
                il.Emit(OpCodes.Ldloc, offset);
                il.Emit(OpCodes.Ldc_I8, (long)width);
                il.Emit(OpCodes.Add);
                il.Emit(OpCodes.Ldarg_1);
                il.Emit(OpCodes.Conv_I8);
                il.Emit(OpCodes.Bgt, reject);
                il.Emit(OpCodes.Ldarg_0);
                il.Emit(OpCodes.Ldloc, offset);
                il.Emit(OpCodes.Conv_I);
                il.Emit(OpCodes.Add);
                if (width == 4)
                {
                    il.Emit(OpCodes.Unaligned, (byte)1);
                    il.Emit(OpCodes.Ldind_U4);
                    il.Emit(OpCodes.Call, Swap32);
                }
                else if (width == 2)
                {
                    il.Emit(OpCodes.Unaligned, (byte)1);
                    il.Emit(OpCodes.Ldind_U2);
                    il.Emit(OpCodes.Call, Swap16);
                }
                else
                {
                    il.Emit(OpCodes.Ldind_U1);
                }
                break;
        }
        il.Emit(OpCodes.Stloc, a);
    }

    private static void EmitLoadX(ILGenerator il, BpfInstruction i, LocalBuilder x, LocalBuilder[] memory, Label reject)
    {
        switch (i.Mode)
        {
            case BpfCodes.Imm or BpfCodes.Len or BpfCodes.Mem:
                EmitRegisterSource(il, i, memory);
                break;
            default: // MSH: X = 4 * (P[k] & 0xf), the IPv4 header length idiom
                il.Emit(OpCodes.Ldc_I8, (long)i.K + 1);
                il.Emit(OpCodes.Ldarg_1);
                il.Emit(OpCodes.Conv_I8);
                il.Emit(OpCodes.Bgt, reject);
                il.Emit(OpCodes.Ldarg_0);
                il.Emit(OpCodes.Ldc_I8, (long)i.K);
                il.Emit(OpCodes.Conv_I);
                il.Emit(OpCodes.Add);
                il.Emit(OpCodes.Ldind_U1);
                il.Emit(OpCodes.Ldc_I4, 0x0F);
                il.Emit(OpCodes.And);
                il.Emit(OpCodes.Ldc_I4_2);
                il.Emit(OpCodes.Shl);
                break;
        }
        il.Emit(OpCodes.Stloc, x);
    }

    /// <summary>Pushes what LD and LDX share: an immediate, the wire length, or a scratch memory word.</summary>
    private static void EmitRegisterSource(ILGenerator il, BpfInstruction i, LocalBuilder[] memory)
    {
        switch (i.Mode)
        {
            case BpfCodes.Imm:
                il.Emit(OpCodes.Ldc_I4, unchecked((int)i.K));
                break;
            case BpfCodes.Len:
                il.Emit(OpCodes.Ldarg_2);
                break;
            default:
                il.Emit(OpCodes.Ldloc, memory[i.K]);
                break;
        }
    }

    private static void EmitAlu(ILGenerator il, BpfInstruction i, LocalBuilder a, LocalBuilder x, Label reject)
    {
        if (i.Operation == BpfCodes.Neg)
        {
            il.Emit(OpCodes.Ldloc, a);
            il.Emit(OpCodes.Neg);
            il.Emit(OpCodes.Stloc, a);
            return;
        }
        if (i.Operation is BpfCodes.Div or BpfCodes.Mod)
        {
            // Division by zero rejects the packet, as in libpcap.
            if (!i.FromX && i.K == 0)
            {
                il.Emit(OpCodes.Br, reject);
                return;
            }
            if (i.FromX)
            {
                il.Emit(OpCodes.Ldloc, x);
                il.Emit(OpCodes.Brfalse, reject);
            }
        }
        il.Emit(OpCodes.Ldloc, a);
        if (i.FromX)
        {
            il.Emit(OpCodes.Ldloc, x);
        }
        else
        {
            il.Emit(OpCodes.Ldc_I4, unchecked((int)i.K));
        }
        if (i.Operation is BpfCodes.Lsh or BpfCodes.Rsh)
        {
            // Shift counts are taken modulo 32, as the interpreter's C# shifts (and x86) do.
            il.Emit(OpCodes.Ldc_I4, 31);
            il.Emit(OpCodes.And);
        }
        il.Emit(i.Operation switch
        {
            BpfCodes.Add => OpCodes.Add,
            BpfCodes.Sub => OpCodes.Sub,
            BpfCodes.Mul => OpCodes.Mul,
            BpfCodes.Div => OpCodes.Div_Un,
            BpfCodes.Mod => OpCodes.Rem_Un,
            BpfCodes.Or => OpCodes.Or,
            BpfCodes.And => OpCodes.And,
            BpfCodes.Xor => OpCodes.Xor,
            BpfCodes.Lsh => OpCodes.Shl,
            _ => OpCodes.Shr_Un,
        });
        il.Emit(OpCodes.Stloc, a);
    }

    private static void EmitJump(ILGenerator il, BpfInstruction i, LocalBuilder a, LocalBuilder x, Label[] labels, int pc)
    {
        if (i.Operation == BpfCodes.Ja)
        {
            il.Emit(OpCodes.Br, labels[pc + 1 + (int)i.K]);
            return;
        }
        var whenTrue = labels[pc + 1 + i.JumpTrue];
        var whenFalse = labels[pc + 1 + i.JumpFalse];
        il.Emit(OpCodes.Ldloc, a);
        if (i.FromX)
        {
            il.Emit(OpCodes.Ldloc, x);
        }
        else
        {
            il.Emit(OpCodes.Ldc_I4, unchecked((int)i.K));
        }
        switch (i.Operation)
        {
            case BpfCodes.Jeq: il.Emit(OpCodes.Beq, whenTrue); break;
            case BpfCodes.Jgt: il.Emit(OpCodes.Bgt_Un, whenTrue); break;
            case BpfCodes.Jge: il.Emit(OpCodes.Bge_Un, whenTrue); break;
            default:
                il.Emit(OpCodes.And);
                il.Emit(OpCodes.Brtrue, whenTrue);
                break;
        }
        il.Emit(OpCodes.Br, whenFalse);
    }
}
