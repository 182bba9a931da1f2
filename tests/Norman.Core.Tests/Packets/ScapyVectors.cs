using System.Text.Json;

namespace Norman.Core.Tests.Packets;

/// <summary>The frames in tests/vectors/packets.json, made by scapy (tests/vectors/make_vectors.py).</summary>
public static class ScapyVectors
{
    private static readonly Lazy<JsonDocument> Document = new(() =>
        JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "vectors", "packets.json"))));

    public static TheoryData<string> Names(string section)
    {
        var data = new TheoryData<string>();
        foreach (var vector in Document.Value.RootElement.GetProperty(section).EnumerateArray())
        {
            data.Add(vector.GetProperty("name").GetString()!);
        }
        return data;
    }

    public static JsonElement Get(string section, string name) =>
        Document.Value.RootElement.GetProperty(section).EnumerateArray().Single(v => v.GetProperty("name").GetString() == name);

    public static byte[] Frame(JsonElement vector) => Convert.FromHexString(vector.GetProperty("hex").GetString()!);
}
