using System.Globalization;
using Norman.Soak;

// norman-soak [SECONDS] (default 3600): exit 0 when nothing was lost and nothing grew.
var report = Soak.Run(TimeSpan.FromSeconds(args.Length > 0 ? double.Parse(args[0], CultureInfo.InvariantCulture) : 3600), Console.Error.WriteLine);
Console.WriteLine(report);
return report.Passed ? 0 : 1;
