using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using PageAlloc.Domain.Allocator;
using PageAlloc.Domain.Model;
using PageAlloc.Domain.Replay;

namespace PageAlloc.Bench;

/// <summary>
/// `replay`: how fast a long kmem trace replays (issue 27). The shared perf-script trace
/// (tests/Fixtures/traces) is repeated --copies times, each copy's timestamps shifted past the one
/// before so that the trace's clock runs on, and written once as text and once as gzip to a
/// temporary directory. Each round replays both files from disk, as tools/TraceReplay does (a fresh
/// default machine with 2 cpus, a snapshot every 10,000 events), and times the replay alone (after
/// one replay of each, not counted, so that tiered compilation is done); the
/// report gives the events/s median with the spread, the peak RSS of each replay (VmHWM, reset before
/// it through /proc/self/clear_refs), and a hash of the result's JSON so that two builds can be
/// checked to give the same answer.
/// </summary>
internal static partial class ReplayBenchCommand
{
    private static readonly JsonSerializerOptions ResultJson = new(JsonSerializerDefaults.Web);

    public static Command Create()
    {
        var copies = new Option<int>("--copies") { Description = "How many times the shared trace (4,196 events) is repeated; 240 make 1,007,040 events.", DefaultValueFactory = _ => 240 };
        var rounds = new Option<int>("--rounds") { Description = "Rounds, each replaying the text and the gzip once.", DefaultValueFactory = _ => 5 };
        var trace = new Option<FileInfo?>("--trace") { Description = "The trace to repeat (default: tests/Fixtures/traces/git-clone-tar.perf-script.txt.gz, looked for above the binary)." };
        var json = new Option<bool>("--json") { Description = "Print one JSON object instead of a table." };
        var command = new Command("replay", "A long perf-script trace (the shared one repeated) replayed from a text file and from a gzip: events/s (median, min-max), peak RSS, the result's hash.")
        {
            copies, rounds, trace, json,
        };
        command.SetAction(parse => Run(parse.GetValue(copies), parse.GetValue(rounds), parse.GetValue(trace), parse.GetValue(json)));
        return command;
    }

    private static int Run(int copies, int rounds, FileInfo? trace, bool json)
    {
        if (copies < 1 || rounds < 1)
        {
            Console.Error.WriteLine("--copies and --rounds must be at least 1.");
            return 1;
        }
        var fixture = trace?.FullName ?? FindFixture();
        if (fixture is null || !File.Exists(fixture))
        {
            Console.Error.WriteLine("The shared trace was not found: give it with --trace.");
            return 1;
        }
        var dir = Directory.CreateTempSubdirectory("replay-bench-");
        try
        {
            var text = Path.Combine(dir.FullName, "trace.txt");
            var gz = text + ".gz";
            var lines = Build(ReadLines(fixture), copies, text, gz);

            // Tier-1 code before anything is timed (WarmUp's reason): the fixture itself, replayed for a second.
            var small = Path.Combine(dir.FullName, "small.txt");
            Build(ReadLines(fixture), 1, small, small + ".gz");
            WarmUp.Run(() => Replay(small, gzip: false));
            WarmUp.Run(() => Replay(small + ".gz", gzip: true));
            // And one replay of each long file, not counted: the fixture's replays end before tiered
            // compilation has promoted everything a long replay runs (its first one ran at a third of the rate).
            var first = new Dictionary<string, double>();
            foreach (var (mode, path) in new[] { ("text", text), ("gzip", gz) })
            {
                var (r, seconds, _) = Replay(path, mode == "gzip");
                first[mode] = r.Events / seconds;
            }

            var rates = new Dictionary<string, List<double>> { ["text"] = [], ["gzip"] = [] };
            var peaks = new Dictionary<string, List<long>> { ["text"] = [], ["gzip"] = [] };
            var hashes = new Dictionary<string, string>();
            long events = 0;
            for (var round = 0; round < rounds; round++)
            {
                foreach (var (mode, path) in new[] { ("text", text), ("gzip", gz) })
                {
                    var (r, seconds, peak) = Replay(path, mode == "gzip");
                    events = r.Events;
                    rates[mode].Add(r.Events / seconds);
                    peaks[mode].Add(peak);
                    hashes[mode] = Hash(r);
                }
            }
            var c = CultureInfo.InvariantCulture;
            double Median(List<double> xs) => xs.Order().ElementAt(xs.Count / 2);
            if (json)
            {
                Console.WriteLine(JsonSerializer.Serialize(new
                {
                    copies, lines, events, rounds,
                    textBytes = new FileInfo(text).Length, gzipBytes = new FileInfo(gz).Length,
                    eventsPerSecond = rates, firstEventsPerSecond = first, peakRssBytes = peaks, resultHash = hashes,
                }, ResultJson));
                return 0;
            }
            Console.WriteLine(string.Create(c,
                $"replay of the shared trace x {copies}: {lines} lines, {events} events; text {new FileInfo(text).Length >> 20} MiB, gzip {new FileInfo(gz).Length >> 20} MiB; {rounds} rounds"));
            foreach (var mode in rates.Keys)
            {
                var xs = rates[mode];
                Console.WriteLine(string.Create(c,
                    $"{mode,-5} {Median(xs) / 1e6:F3} M events/s (min {xs.Min() / 1e6:F3}, max {xs.Max() / 1e6:F3}; rounds {string.Join(", ", xs.Select(x => (x / 1e6).ToString("F3", c)))}; first, not counted, {first[mode] / 1e6:F3}); peak RSS {peaks[mode].Max() >> 20} MiB; result {hashes[mode]}"));
            }
            return 0;
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    /// <summary>One replay of a file as tools/TraceReplay runs it: its result, the seconds it took, and the process's peak RSS during it.</summary>
    private static (ReplayResult Result, double Seconds, long PeakRss) Replay(string path, bool gzip)
    {
        var config = MachineConfig.Default();
        config.Cpus = 2;
        var machine = new Machine(config);
        var replayer = new TraceReplayer(machine, machine.FindZone("Normal")!, timelineEvery: 10_000);
        GC.Collect();
        GC.WaitForPendingFinalizers();
        ResetPeakRss();
        var watch = Stopwatch.StartNew();
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
        var result = replayer.ReplayAsync(TraceInput.Open(stream, gzip)).GetAwaiter().GetResult();
        var seconds = watch.Elapsed.TotalSeconds;
        return (result, seconds, PeakRss());
    }

    /// <summary>The first 16 hex digits of the SHA-256 of the result's JSON: equal for two builds that give the same answer.</summary>
    private static string Hash(ReplayResult result) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(JsonSerializer.Serialize(result, ResultJson))))[..16];

    // Writing 5 to clear_refs resets the peak resident set (VmHWM) to the current one (Linux 4.0 and later).
    private static void ResetPeakRss()
    {
        try
        {
            File.WriteAllText("/proc/self/clear_refs", "5");
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    private static long PeakRss()
    {
        var line = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
        return line is null ? Process.GetCurrentProcess().PeakWorkingSet64
            : long.Parse(line["VmHWM:".Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) << 10;
    }

    private static string? FindFixture()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var path = Path.Combine(dir.FullName, "tests", "Fixtures", "traces", "git-clone-tar.perf-script.txt.gz");
            if (File.Exists(path))
            {
                return path;
            }
        }
        return null;
    }

    private static List<string> ReadLines(string path)
    {
        using var file = File.OpenRead(path);
        using var reader = new StreamReader(path.EndsWith(".gz", StringComparison.Ordinal) ? new GZipStream(file, CompressionMode.Decompress) : file);
        var lines = new List<string>();
        while (reader.ReadLine() is { } line)
        {
            lines.Add(line);
        }
        return lines;
    }

    // perf script's timestamp: the seconds after the cpu column, before the colon.
    [GeneratedRegex(@"(?<=\]\s+(?:[\w.]{4,6}\s+)?)\d+\.\d+(?=:)", RegexOptions.CultureInvariant)]
    private static partial Regex Time();

    /// <summary>
    /// Writes the lines <paramref name="copies"/> times as text and as gzip, each copy's timestamps
    /// shifted by the trace's length and a millisecond; returns the lines written.
    /// </summary>
    private static long Build(List<string> lines, int copies, string text, string gz)
    {
        var times = lines.Select(l => Time().Match(l)).Where(m => m.Success).Select(m => double.Parse(m.Value, CultureInfo.InvariantCulture)).ToList();
        var shift = times.Count == 0 ? 0 : times.Max() - times.Min() + 0.001;
        using var textFile = new StreamWriter(text, false, new UTF8Encoding(false), 1 << 16);
        using var gzFile = new StreamWriter(new GZipStream(File.Create(gz), CompressionLevel.Optimal), new UTF8Encoding(false), 1 << 16);
        long written = 0;
        for (var copy = 0; copy < copies; copy++)
        {
            foreach (var line in lines)
            {
                var shifted = copy == 0 ? line : Time().Replace(line, m =>
                    (double.Parse(m.Value, CultureInfo.InvariantCulture) + copy * shift).ToString("F6", CultureInfo.InvariantCulture), 1);
                textFile.Write(shifted);
                textFile.Write('\n');
                gzFile.Write(shifted);
                gzFile.Write('\n');
                written++;
            }
        }
        return written;
    }
}
