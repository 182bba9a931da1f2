using System.Buffers.Binary;
using System.Globalization;

namespace Norman.Core.Packets;

/// <summary>A 48-bit Ethernet address held in the low bytes of a ulong, in wire order (first byte highest).</summary>
public readonly record struct MacAddress(ulong Value)
{
    public const int Size = 6;
    public static readonly MacAddress Broadcast = new(0xFFFF_FFFF_FFFFUL);
    public static readonly MacAddress Zero = new(0);

    public bool IsBroadcast => Value == Broadcast.Value;

    public static MacAddress Read(ReadOnlySpan<byte> source) =>
        new(((ulong)BinaryPrimitives.ReadUInt16BigEndian(source) << 32) | BinaryPrimitives.ReadUInt32BigEndian(source[2..]));

    public void Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt16BigEndian(destination, (ushort)(Value >> 32));
        BinaryPrimitives.WriteUInt32BigEndian(destination[2..], (uint)Value);
    }

    /// <summary>A random, locally administered, unicast address (02:xx:…), as Linux gives a new TAP.</summary>
    public static MacAddress NewLocal()
    {
        Span<byte> bytes = stackalloc byte[Size];
        Random.Shared.NextBytes(bytes);
        bytes[0] = (byte)((bytes[0] & 0xFC) | 0x02);
        return Read(bytes);
    }

    public static MacAddress Parse(string text)
    {
        var parts = text.Split(':', '-');
        if (parts.Length != Size)
        {
            throw new FormatException($"'{text}' is not a MAC address: write six hex bytes like 02:00:00:00:00:01.");
        }
        ulong value = 0;
        foreach (var part in parts)
        {
            value = (value << 8) | byte.Parse(part, NumberStyles.HexNumber, CultureInfo.InvariantCulture);
        }
        return new MacAddress(value);
    }

    public override string ToString()
    {
        Span<byte> bytes = stackalloc byte[Size];
        Write(bytes);
        return string.Create(CultureInfo.InvariantCulture, $"{bytes[0]:x2}:{bytes[1]:x2}:{bytes[2]:x2}:{bytes[3]:x2}:{bytes[4]:x2}:{bytes[5]:x2}");
    }
}
