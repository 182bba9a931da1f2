using System.Text;

namespace Norman.Daemon.Policy;

/// <summary>
/// A line of the policy file as words, and a word as the file must write it to read it back the same: a word with
/// spaces, quotes, a backslash, a '#' or braces, or an empty one, goes in double quotes, with <c>\"</c> and
/// <c>\\</c> inside. What <see cref="Quote"/> writes, <see cref="Split"/> reads back unchanged, for every string.
/// </summary>
public static class RuleWords
{
    /// <summary>Splits a line into words: whitespace between them, "quoted words" whole, and a '#' outside quotes ending the line.</summary>
    public static List<string> Split(string line)
    {
        var words = new List<string>();
        int i = 0;
        while (i < line.Length)
        {
            char c = line[i];
            if (char.IsWhiteSpace(c))
            {
                i++;
                continue;
            }
            if (c == '#')
            {
                break;
            }
            if (c == '"')
            {
                var word = new StringBuilder();
                int j = i + 1;
                for (; j < line.Length && line[j] != '"'; j++)
                {
                    if (line[j] == '\\' && j + 1 < line.Length && line[j + 1] is '"' or '\\')
                    {
                        j++;
                    }
                    word.Append(line[j]);
                }
                if (j >= line.Length)
                {
                    throw new FormatException($"Unclosed quote in '{line}': close it with a \", and write a quote inside one as \\\".");
                }
                words.Add(word.ToString());
                i = j + 1;
                continue;
            }
            int stop = i;
            while (stop < line.Length && !char.IsWhiteSpace(line[stop]))
            {
                if (line[stop] == '"')
                {
                    throw new FormatException($"A quote inside a word in '{line}': quote the whole word, as \"{line[i..].Split(' ')[0].Replace("\"", "")}\".");
                }
                stop++;
            }
            words.Add(line[i..stop]);
            i = stop;
        }
        return words;
    }

    /// <summary>The word as the file writes it: bare if it reads back the same, else quoted and escaped.</summary>
    public static string Quote(string word)
    {
        bool bare = word.Length > 0 && word.All(c => !char.IsWhiteSpace(c) && c is not ('"' or '\\' or '#' or '{' or '}' or '\''));
        return bare ? word : "\"" + word.Replace("\\", "\\\\").Replace("\"", "\\\"") + "\"";
    }
}
