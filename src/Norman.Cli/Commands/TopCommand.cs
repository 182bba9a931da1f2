using System.CommandLine;
using System.Globalization;
using Norman.Client;
using Norman.Core.Protocol;
using Spectre.Console;

namespace Norman.Cli.Commands;

/// <summary>
/// `norman top`: a live view of Norman's sockets, as top is of processes: packets and bits per second each way, drops,
/// how full each pipe is, and the QoS class; redrawn in place every interval; sorted by a key; q or Ctrl-C quits.
/// </summary>
public static class TopCommand
{
    private enum Order { Rx, Tx, Drops, Port, Pid }

    public static Command Create()
    {
        var socket = new Option<string?>("--socket", "-S") { Description = "The daemon's control socket (default: $NORMAN_SOCKET, else /run/norman/norman.sock)." };
        var interval = new Option<double>("--interval", "-d") { Description = "Seconds between refreshes (top's -d).", DefaultValueFactory = _ => 1 };
        var iterations = new Option<int>("--iterations", "-n") { Description = "Stop after this many refreshes (top's -n); 0 runs until q." };
        var command = new Command("top", "A live view of Norman's sockets: rates each way, drops, pipe occupancy, QoS class.\n" +
            "Keys: r sort by received, t by sent, d by drops, p by port, i by pid; q or Ctrl-C quits.\n\n" +
            "Examples:\n  norman top\n  norman top -d 0.5\n  norman top -n 3 > snapshot.txt")
        {
            socket, interval, iterations,
        };
        command.SetAction(result =>
        {
            double seconds = result.GetValue(interval);
            if (seconds is < 0.1 or > 3600 || double.IsNaN(seconds))
            {
                Console.Error.WriteLine($"norman top: bad delay interval '{seconds}': give -d seconds from 0.1 to 3600.");
                return 2;
            }
            if (result.GetValue(iterations) < 0)
            {
                Console.Error.WriteLine($"norman top: bad number of iterations '{result.GetValue(iterations)}': give -n 1 or more (0, or none, runs until q).");
                return 2;
            }
            try
            {
                using var control = ControlChannel.Connect(result.GetValue(socket));
                return Console.IsOutputRedirected
                    ? RunBatch(control, TimeSpan.FromSeconds(seconds), result.GetValue(iterations))
                    : Run(control, TimeSpan.FromSeconds(seconds), result.GetValue(iterations));
            }
            catch (NormanException error)
            {
                Console.Error.WriteLine($"norman top: {error.Message}");
                return 1;
            }
        });
        return command;
    }

    private static int Run(ControlChannel control, TimeSpan interval, int iterations)
    {
        var order = Order.Rx;
        bool quit = false;
        ConsoleCancelEventHandler onCancel = (_, e) =>
        {
            e.Cancel = true; // leave through the loop, so the terminal is left as it was found
            quit = true;
        };
        Console.CancelKeyPress += onCancel;
        try
        {
            var previous = Sample(control);
            var console = AnsiConsole.Console;
            console.Live(Render(previous, previous, TimeSpan.Zero, order)).AutoClear(false).Start(live =>
            {
                for (int shown = 0; !quit && (iterations <= 0 || shown < iterations); shown++)
                {
                    var deadline = DateTime.UtcNow + interval;
                    while (!quit && DateTime.UtcNow < deadline)
                    {
                        if (!Console.IsInputRedirected && Console.KeyAvailable)
                        {
                            switch (char.ToLowerInvariant(Console.ReadKey(intercept: true).KeyChar))
                            {
                                case 'q': quit = true; break;
                                case 'r': order = Order.Rx; break;
                                case 't': order = Order.Tx; break;
                                case 'd': order = Order.Drops; break;
                                case 'p': order = Order.Port; break;
                                case 'i': order = Order.Pid; break;
                            }
                        }
                        Thread.Sleep(50); // the keyboard's pace, not a synchronisation: a key is answered within 50 ms
                    }
                    var current = Sample(control);
                    live.UpdateTarget(Render(previous, current, current.At - previous.At, order));
                    previous = current;
                }
            });
            return 0;
        }
        finally
        {
            Console.CancelKeyPress -= onCancel;
        }
    }

    /// <summary>
    /// Output to a file or a pipe: plain text, no colours or cursor moves, every column whole, one table per refresh,
    /// as top's batch mode (-b) writes; it ends after -n refreshes (or at Ctrl-C), or when the reader goes away.
    /// </summary>
    private static int RunBatch(ControlChannel control, TimeSpan interval, int iterations)
    {
        using var stop = new CancellationTokenSource();
        ConsoleCancelEventHandler onCancel = (_, e) =>
        {
            e.Cancel = true;
            stop.Cancel();
        };
        Console.CancelKeyPress += onCancel;
        try
        {
            using var output = StandardOutput.OpenWriter();
            var console = AnsiConsole.Create(new AnsiConsoleSettings
            {
                Ansi = AnsiSupport.No,
                ColorSystem = ColorSystemSupport.NoColors,
                Interactive = InteractionSupport.No,
                Out = new AnsiConsoleOutput(output),
            });
            console.Profile.Width = 400;
            var previous = Sample(control);
            for (int shown = 0; (iterations <= 0 || shown < iterations) && !stop.IsCancellationRequested; shown++)
            {
                stop.Token.WaitHandle.WaitOne(interval);
                var current = Sample(control);
                console.Write(Render(previous, current, current.At - previous.At, Order.Rx));
                console.WriteLine();
                output.Flush();
                previous = current;
            }
            return 0;
        }
        catch (IOException) when (StandardOutput.IsBroken)
        {
            return 0; // the reader went away (top -b | head): done, as top is
        }
        finally
        {
            Console.CancelKeyPress -= onCancel;
        }
    }

    private sealed record Snapshot(DateTime At, StatsInfo Stats);

    private static Snapshot Sample(ControlChannel control) =>
        new(DateTime.UtcNow, control.Call(new ControlRequest { Op = ControlProtocol.Ops.Stats }).Stats ?? new StatsInfo());

    private static Table Render(Snapshot before, Snapshot now, TimeSpan elapsed, Order order)
    {
        double seconds = Math.Max(elapsed.TotalSeconds, 1e-9);
        var earlier = before.Stats.Sockets.ToDictionary(s => s.Id);
        var rows = now.Stats.Sockets.Select(s =>
        {
            var was = earlier.GetValueOrDefault(s.Id) ?? s;
            return (Socket: s,
                RxPps: (s.RxPackets - was.RxPackets) / seconds, RxBps: (s.RxBytes - was.RxBytes) * 8 / seconds,
                TxPps: (s.TxPackets - was.TxPackets) / seconds, TxBps: (s.TxBytes - was.TxBytes) * 8 / seconds,
                Drops: s.Drops.Values.Sum() - was.Drops.Values.Sum());
        });
        rows = order switch
        {
            Order.Tx => rows.OrderByDescending(r => r.TxPps),
            Order.Drops => rows.OrderByDescending(r => r.Drops),
            Order.Port => rows.OrderBy(r => r.Socket.LocalPort),
            Order.Pid => rows.OrderBy(r => r.Socket.Pid),
            _ => rows.OrderByDescending(r => r.RxPps),
        };
        long Delta(string key) => now.Stats.Counters.GetValueOrDefault(key) - before.Stats.Counters.GetValueOrDefault(key);
        long drops = now.Stats.Counters.Where(c => c.Key.StartsWith("drop_", StringComparison.Ordinal)).Sum(c => c.Value)
            - before.Stats.Counters.Where(c => c.Key.StartsWith("drop_", StringComparison.Ordinal)).Sum(c => c.Value);
        var table = new Table().Border(TableBorder.Simple).Title(Markup.Escape(
            $"norman top — port: rx {Rate(Delta("port_rx_packets") / seconds)}pps {Rate(Delta("port_rx_bytes") * 8 / seconds)}bit/s, " +
            $"tx {Rate(Delta("port_tx_packets") / seconds)}pps {Rate(Delta("port_tx_bytes") * 8 / seconds)}bit/s, drops {Rate(drops / seconds)}/s; " +
            $"{now.Stats.Sockets.Count} sockets; sorted by {order.ToString().ToLowerInvariant()} (r t d p i, q quits)"));
        foreach (var column in new[] { "PID", "APP", "SOCKET", "RX pps", "RX bit/s", "TX pps", "TX bit/s", "DROPS/s", "DROPS by reason", "RECV-Q", "SEND-Q", "CLASS" })
        {
            table.AddColumn(new TableColumn(column) { Alignment = column is "APP" or "SOCKET" or "DROPS by reason" or "CLASS" ? Justify.Left : Justify.Right });
        }
        foreach (var r in rows)
        {
            var s = r.Socket;
            table.AddRow(
                s.Pid == 0 ? "-" : s.Pid.ToString(CultureInfo.InvariantCulture),
                Markup.Escape(s.Pid == 0 ? "?" : s.ProcessName),
                Markup.Escape($"{s.Protocol} {s.LocalAddress}:{s.LocalPort}"),
                Rate(r.RxPps), Rate(r.RxBps), Rate(r.TxPps), Rate(r.TxBps), Rate(r.Drops / seconds),
                Markup.Escape(string.Join(" ", s.Drops.Where(d => d.Value > 0).Select(d => $"{d.Key}:{d.Value}"))),
                Occupancy(s.RecvQ, s.SlotCount), Occupancy(s.SendQ, s.SlotCount),
                Markup.Escape(s.QosClass ?? "-"));
        }
        return table;
    }

    private static string Occupancy(long queued, int slots) =>
        slots == 0 ? queued.ToString(CultureInfo.InvariantCulture) : $"{queued}/{slots}";

    /// <summary>1234567 → "1.23M", as top and ifstat print rates.</summary>
    private static string Rate(double value) => value switch
    {
        >= 1e9 => (value / 1e9).ToString("0.00", CultureInfo.InvariantCulture) + "G",
        >= 1e6 => (value / 1e6).ToString("0.00", CultureInfo.InvariantCulture) + "M",
        >= 1e3 => (value / 1e3).ToString("0.00", CultureInfo.InvariantCulture) + "k",
        _ => value.ToString("0", CultureInfo.InvariantCulture),
    };
}
