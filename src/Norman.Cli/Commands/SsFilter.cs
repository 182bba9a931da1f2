using System.Globalization;
using System.Net;
using Norman.Core.Protocol;

namespace Norman.Cli.Commands;

/// <summary>
/// ss's filter language, the part people type: <c>sport = :80</c>, <c>dport != :53</c>, <c>sport &gt;= :1024</c>,
/// <c>src 198.18.0.1</c>, <c>dst 198.18.0.2:53</c>, joined with and/or/not (also &amp;&amp;, ||, !) and parentheses.
/// </summary>
public sealed class SsFilter
{
    private readonly Func<SocketInfo, bool> _predicate;

    private SsFilter(Func<SocketInfo, bool> predicate) => _predicate = predicate;

    public static readonly SsFilter All = new(_ => true);

    public bool Matches(SocketInfo socket) => _predicate(socket);

    public static SsFilter Parse(IReadOnlyList<string> words)
    {
        var tokens = Tokenize(words);
        if (tokens.Count == 0)
        {
            return All;
        }
        int position = 0;
        var predicate = ParseOr(tokens, ref position);
        if (position != tokens.Count)
        {
            throw new FormatException($"ss filter: unexpected '{tokens[position]}'. Example: sport = :80 or dport = :53");
        }
        return new SsFilter(predicate);
    }

    private static List<string> Tokenize(IReadOnlyList<string> words)
    {
        var tokens = new List<string>();
        foreach (var word in words)
        {
            string spaced = word.Replace("(", " ( ").Replace(")", " ) ").Replace("!=", " != ").Replace(">=", " >= ").Replace("<=", " <= ").Replace("==", " == ");
            foreach (var token in spaced.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            {
                tokens.Add(token);
            }
        }
        return tokens;
    }

    private static Func<SocketInfo, bool> ParseOr(List<string> tokens, ref int position)
    {
        var left = ParseAnd(tokens, ref position);
        while (position < tokens.Count && tokens[position] is "or" or "||")
        {
            position++;
            var right = ParseAnd(tokens, ref position);
            var l = left;
            left = s => l(s) || right(s);
        }
        return left;
    }

    private static Func<SocketInfo, bool> ParseAnd(List<string> tokens, ref int position)
    {
        var left = ParseUnary(tokens, ref position);
        while (position < tokens.Count && tokens[position] is not ("or" or "||" or ")"))
        {
            if (tokens[position] is "and" or "&&")
            {
                position++;
            }
            var right = ParseUnary(tokens, ref position);
            var l = left;
            left = s => l(s) && right(s);
        }
        return left;
    }

    private static Func<SocketInfo, bool> ParseUnary(List<string> tokens, ref int position)
    {
        string token = Next(tokens, ref position);
        switch (token)
        {
            case "not" or "!":
                var inner = ParseUnary(tokens, ref position);
                return s => !inner(s);
            case "(":
                var group = ParseOr(tokens, ref position);
                if (Next(tokens, ref position) != ")")
                {
                    throw new FormatException("ss filter: missing ')'.");
                }
                return group;
            case "sport" or "dport":
                return PortTest(token == "sport", tokens, ref position);
            case "src" or "dst":
                return AddressTest(token == "src", Next(tokens, ref position));
            default:
                throw new FormatException($"ss filter: '{token}' is not understood. Use sport, dport, src, dst with and, or, not.");
        }
    }

    private static Func<SocketInfo, bool> PortTest(bool local, List<string> tokens, ref int position)
    {
        string op = Next(tokens, ref position);
        string operand = op.StartsWith(':') ? op : Next(tokens, ref position);
        if (op.StartsWith(':'))
        {
            op = "=";
        }
        int port = ParsePort(operand);
        Func<int, int, bool> compare = op switch
        {
            "=" or "==" or "eq" => (a, b) => a == b,
            "!=" or "ne" or "neq" => (a, b) => a != b,
            ">" or "gt" => (a, b) => a > b,
            "<" or "lt" => (a, b) => a < b,
            ">=" or "ge" or "geq" => (a, b) => a >= b,
            "<=" or "le" or "leq" => (a, b) => a <= b,
            _ => throw new FormatException($"ss filter: '{op}' is not a comparison. Use = != < > <= >=."),
        };
        return s => compare(local ? s.LocalPort : s.RemotePort, port);
    }

    private static Func<SocketInfo, bool> AddressTest(bool local, string operand)
    {
        string addressPart = operand;
        int? port = null;
        int colon = operand.LastIndexOf(':');
        if (operand.StartsWith('['))
        {
            // IPv6 as ss writes it: [fd66::1], [fd66::1]:53, [::]:*
            int close = operand.IndexOf(']');
            if (close < 0 || (close + 1 < operand.Length && operand[close + 1] != ':'))
            {
                throw new FormatException($"ss filter: '{operand}' is not an address; write IPv6 like [fd66::1] or [fd66::1]:53.");
            }
            addressPart = operand[1..close];
            if (close + 1 < operand.Length && operand[(close + 2)..] is not ("" or "*"))
            {
                port = ParsePort(operand[(close + 1)..]);
            }
        }
        else if (colon >= 0 && operand.Count(c => c == ':') == 1)
        {
            addressPart = operand[..colon];
            port = ParsePort(operand[colon..]);
        }
        bool anyAddress = addressPart is "" or "*";
        IPAddress? wanted = null;
        if (!anyAddress && !IPAddress.TryParse(addressPart, out wanted))
        {
            throw new FormatException($"ss filter: '{addressPart}' is not an address.");
        }
        return s =>
        {
            string address = local ? s.LocalAddress : s.RemoteAddress;
            int socketPort = local ? s.LocalPort : s.RemotePort;
            // Compared as addresses, not text: fd66:0::1 is fd66::1.
            return (anyAddress || (IPAddress.TryParse(address, out var actual) && actual.Equals(wanted))) && (port is null || socketPort == port);
        };
    }

    private static int ParsePort(string text)
    {
        string digits = text.TrimStart(':');
        if (!int.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out int port) || port > 65535)
        {
            throw new FormatException($"ss filter: '{text}' is not a port; write it like :80.");
        }
        return port;
    }

    private static string Next(List<string> tokens, ref int position) =>
        position < tokens.Count ? tokens[position++] : throw new FormatException("ss filter: the expression ends too early. Example: sport = :80");
}
