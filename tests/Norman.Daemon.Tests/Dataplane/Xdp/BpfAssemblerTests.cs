using Norman.Daemon.Dataplane.Ports.Xdp;

namespace Norman.Daemon.Tests.Dataplane.Xdp;

/// <summary>The encoding of struct bpf_insn, checked against instructions as linux/bpf.h lays them out.</summary>
public sealed class BpfAssemblerTests
{
    private static (byte Code, int Dst, int Src, short Offset, int Immediate) Decode(ulong instruction) =>
        ((byte)instruction, (int)(instruction >> 8) & 0xF, (int)(instruction >> 12) & 0xF, (short)(instruction >> 16), (int)(instruction >> 32));

    [Fact]
    public void Jumps_resolve_forward_and_backward_relative_to_the_next_instruction()
    {
        var asm = new BpfAssembler();
        asm.Label("top");                          // 0
        asm.JumpIfEqualImm(1, 0xC6120001, "end");  // 0: jeq32 r1, imm, +2
        asm.MovImm(0, 2);                          // 1
        asm.Jump("top");                           // 2: ja -3
        asm.Label("end");
        asm.Return();                              // 3

        var code = asm.Assemble();

        Assert.Equal((0x16, 1, 0, (short)2, unchecked((int)0xC6120001)), Decode(code[0])); // BPF_JMP32 | BPF_JEQ | BPF_K
        Assert.Equal((0xb7, 0, 0, (short)0, 2), Decode(code[1]));                            // BPF_ALU64 | BPF_MOV | BPF_K
        Assert.Equal((0x05, 0, 0, (short)-3, 0), Decode(code[2]));                           // BPF_JMP | BPF_JA
        Assert.Equal((0x95, 0, 0, (short)0, 0), Decode(code[3]));                            // BPF_JMP | BPF_EXIT
    }

    [Fact]
    public void A_map_reference_and_a_64_bit_constant_take_two_slots()
    {
        var asm = new BpfAssembler();
        asm.LoadMap(1, 7);
        asm.LoadImm64(4, 0x1122334455667788);
        asm.AtomicAdd64(0, 8, 1);

        var code = asm.Assemble();

        Assert.Equal(5, code.Length);
        Assert.Equal((0x18, 1, 1, (short)0, 7), Decode(code[0])); // ld_imm64 with BPF_PSEUDO_MAP_FD
        Assert.Equal(0UL, code[1]);
        Assert.Equal((0x18, 4, 0, (short)0, 0x55667788), Decode(code[2]));
        Assert.Equal(0x11223344, Decode(code[3]).Immediate);
        Assert.Equal((0xdb, 0, 1, (short)8, 0), Decode(code[4])); // BPF_STX | BPF_ATOMIC | BPF_DW, BPF_ADD
    }

    [Fact]
    public void A_jump_to_a_label_never_placed_is_an_error_not_a_program()
    {
        var asm = new BpfAssembler();
        asm.Jump("nowhere");
        Assert.Throws<InvalidOperationException>(asm.Assemble);
    }
}
