namespace Norman.Daemon.Policy.Bpf;

/// <summary>
/// A validated classic BPF program: every jump lands inside it and forward, scratch memory indexes are in range,
/// every opcode is known, and it ends in a return. The interpreter and the IL compiler rely on that.
/// </summary>
public sealed class BpfProgram
{
    public BpfProgram(IReadOnlyList<BpfInstruction> instructions, string expression = "")
    {
        Validate(instructions);
        Instructions = instructions.ToArray();
        Expression = expression;
    }

    public BpfInstruction[] Instructions { get; }
    /// <summary>The libpcap expression it was compiled from, for messages.</summary>
    public string Expression { get; }

    private static void Validate(IReadOnlyList<BpfInstruction> program)
    {
        if (program.Count is 0 or > 4096)
        {
            throw new InvalidDataException($"A BPF program has 1 to 4096 instructions, not {program.Count}.");
        }
        for (int pc = 0; pc < program.Count; pc++)
        {
            var instruction = program[pc];
            string? problem = instruction.Class switch
            {
                BpfCodes.Ld => instruction.Mode switch
                {
                    BpfCodes.Imm or BpfCodes.Len when instruction.SizeBits == BpfCodes.W => null,
                    BpfCodes.Abs or BpfCodes.Ind when instruction.SizeBits != 0x18 => null,
                    BpfCodes.Mem when instruction.K < BpfCodes.MemoryWords => null,
                    _ => "bad load",
                },
                BpfCodes.Ldx => instruction.Mode switch
                {
                    BpfCodes.Imm or BpfCodes.Len => null,
                    BpfCodes.Mem when instruction.K < BpfCodes.MemoryWords => null,
                    BpfCodes.Msh when instruction.SizeBits == BpfCodes.B => null,
                    _ => "bad load into X",
                },
                BpfCodes.St or BpfCodes.Stx => instruction.K < BpfCodes.MemoryWords ? null : "store outside scratch memory",
                BpfCodes.Alu => instruction.Operation <= BpfCodes.Xor ? null : "unknown ALU operation",
                BpfCodes.Jmp => instruction.Operation switch
                {
                    BpfCodes.Ja => pc + 1 + (long)instruction.K < program.Count ? null : "jump out of the program",
                    BpfCodes.Jeq or BpfCodes.Jgt or BpfCodes.Jge or BpfCodes.Jset =>
                        pc + 1 + Math.Max(instruction.JumpTrue, instruction.JumpFalse) < program.Count ? null : "jump out of the program",
                    _ => "unknown jump",
                },
                BpfCodes.Ret => (instruction.Code & 0x18) is BpfCodes.RetK or BpfCodes.RetA ? null : "bad return",
                BpfCodes.Misc => (instruction.Code & 0xF8) is BpfCodes.Tax or BpfCodes.Txa ? null : "unknown misc operation",
                _ => "unknown class",
            };
            if (problem is not null)
            {
                throw new InvalidDataException($"BPF instruction {pc} {instruction}: {problem}.");
            }
        }
        if (program[^1].Class != BpfCodes.Ret)
        {
            throw new InvalidDataException("A BPF program must end with a return.");
        }
    }
}
