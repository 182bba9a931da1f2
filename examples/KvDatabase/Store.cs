using System.Text;

namespace KvDatabase;

/// <summary>
/// The keys and values, and the commands on them, shared by the UDP and TCP services. One lock: the UDP loop and the
/// TCP connections run on different threads; uncontended, it costs a few nanoseconds and allocates nothing.
/// </summary>
public sealed class Store
{
    private const int MaxKeyBytes = 2048;
    private readonly Dictionary<string, byte[]> _values = new();
    private readonly Dictionary<string, byte[]>.AlternateLookup<ReadOnlySpan<char>> _byKey;

    public Store() => _byKey = _values.GetAlternateLookup<ReadOnlySpan<char>>();

    /// <summary>Runs one command; writes its answer into <paramref name="answer"/> (cut to fit) and returns its length.</summary>
    public int Answer(ReadOnlySpan<byte> request, Span<byte> answer)
    {
        var command = Word(request, out var rest);
        var name = Word(rest, out var value);
        // A key's UTF-8 bytes never make more characters than there are bytes; longer keys are cut.
        Span<char> key = stackalloc char[MaxKeyBytes];
        int keyLength = Encoding.UTF8.GetChars(name[..Math.Min(name.Length, MaxKeyBytes)], key);
        lock (_values)
        {
            if (Is(command, "SET") && value.Length > 0)
            {
                _values[key[..keyLength].ToString()] = value.ToArray();
                return Write("OK"u8, answer);
            }
            if (Is(command, "GET") && name.Length > 0 && value.Length == 0)
            {
                return _byKey.TryGetValue(key[..keyLength], out var stored) ? Write("VALUE "u8, answer) + Write(stored, answer[Math.Min(6, answer.Length)..]) : Write("NOT_FOUND"u8, answer);
            }
            if (Is(command, "DEL") && name.Length > 0 && value.Length == 0)
            {
                return Write(_byKey.Remove(key[..keyLength]) ? "OK"u8 : "NOT_FOUND"u8, answer);
            }
        }
        return Write("ERROR usage: SET key value | GET key | DEL key"u8, answer);
    }

    private static int Write(ReadOnlySpan<byte> bytes, Span<byte> answer)
    {
        int room = Math.Min(bytes.Length, answer.Length);
        bytes[..room].CopyTo(answer);
        return room;
    }

    // The first space-separated word, and what follows its space (for SET, the value keeps its own spaces).
    private static ReadOnlySpan<byte> Word(ReadOnlySpan<byte> text, out ReadOnlySpan<byte> rest)
    {
        int space = text.IndexOf((byte)' ');
        rest = space < 0 ? ReadOnlySpan<byte>.Empty : text[(space + 1)..];
        return space < 0 ? text : text[..space];
    }

    private static bool Is(ReadOnlySpan<byte> word, string command) => Ascii.EqualsIgnoreCase(word, command);
}
