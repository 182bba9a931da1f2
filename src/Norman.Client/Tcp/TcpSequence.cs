namespace Norman.Client.Tcp;

/// <summary>Sequence numbers compare modulo 2³² (RFC 9293 §3.4): a is before b when b − a, as a signed number, is positive.</summary>
internal static class TcpSequence
{
    public static bool Before(uint a, uint b) => (int)(a - b) < 0;
    public static bool AtOrBefore(uint a, uint b) => (int)(a - b) <= 0;
    public static bool After(uint a, uint b) => (int)(a - b) > 0;
    public static bool AtOrAfter(uint a, uint b) => (int)(a - b) >= 0;
    public static uint Max(uint a, uint b) => After(a, b) ? a : b;
}
