using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using PageAlloc.Domain.Allocator;
using PageAlloc.Domain.Model;
using PageAlloc.Domain.Replay;

namespace PageAlloc.TraceReplay;

/// <summary>
/// The command line: replays a kernel kmem trace (perf script, ftrace or trace-cmd text; gzip or not)
/// in-process, on a machine of the default shape, and prints what the simulator did beside what the
/// kernel did. Output and errors go to the invocation's writers (the console unless a caller sets them).
/// </summary>
public static class ReplayCommand
{
    /// <summary>The exit code for a file that is not a kmem trace (no kmem event in it, or bad gzip).</summary>
    public const int NotATraceExit = 3;

    /// <summary>The exit code for a file past --max-bytes (after decompression) or with a line longer than --max-line-bytes.</summary>
    public const int TooLargeExit = 4;

    private static readonly JsonSerializerOptions JsonOptions = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    public static RootCommand Create()
    {
        var file = new Argument<FileInfo>("trace") { Description = "The trace: perf script, ftrace trace or trace-cmd report text, gzipped or not." };
        file.AcceptExistingOnly();
        var zone = new Option<string>("--zone") { Description = "The preferred zone of every allocation (the zonelist falls back from it).", DefaultValueFactory = _ => "Normal" };
        var cpus = new Option<int>("--cpus") { Description = "Simulated cpus; the trace's cpus are folded onto them.", DefaultValueFactory = _ => 2 };
        var every = new Option<int>("--timeline-every") { Description = "Events between two timeline snapshots.", DefaultValueFactory = _ => 10_000 };
        var points = new Option<int>("--timeline-points") { Description = "The most timeline snapshots kept: at the limit every second one is dropped and the interval doubles.", DefaultValueFactory = _ => TraceReplayer.DefaultTimelinePoints };
        var maxLine = new Option<int>("--max-line-bytes") { Description = "The longest line read (a perf script line is about 200 bytes); a longer one stops the replay with exit code 4.", DefaultValueFactory = _ => 1 << 20 };
        var maxBytes = new Option<long>("--max-bytes") { Description = "The most text read, after decompression (0: no bound); past it the replay stops with exit code 4.", DefaultValueFactory = _ => 0 };
        var json = new Option<bool>("--json") { Description = "Print the whole result as JSON, timeline included." };
        var zoneinfo = new Option<FileInfo>("--zoneinfo") { Description = "A /proc/zoneinfo: each zone of the default machine takes its managed pages, to replay on a machine shaped like the one that recorded the trace." };
        var import = new Option<FileInfo>("--import")
        {
            Description = "The recording machine's /proc/zoneinfo followed by its /proc/pagetypeinfo (sudo cat /proc/zoneinfo /proc/pagetypeinfo): the zones take its "
                + "managed pages and free lists, and the used pages of its Movable pageblocks are page cache (reclaimable, movable), the rest pinned, as POST .../fragment's pageCache makes them.",
        };
        zoneinfo.AcceptExistingOnly();
        var root = new RootCommand("Replays a kernel kmem trace on a simulated machine (the default machine's zones, --cpus cpus). "
            + "Exit codes: 0 replayed, 1 bad command line, 2 an unknown zone or a machine that does not validate, 3 not a kmem trace (no kmem event in it, or bad gzip), 4 a line longer than --max-line-bytes or more text than --max-bytes.") { file, zone, cpus, every, points, maxLine, maxBytes, json, zoneinfo, import };
        root.SetAction(async (parse, ct) =>
        {
            var output = parse.InvocationConfiguration.Output;
            var error = parse.InvocationConfiguration.Error;
            var config = MachineConfig.Default();
            config.Cpus = parse.GetValue(cpus);
            var importFile = parse.GetValue(import);
            var imported = importFile is not null ? await File.ReadAllTextAsync(importFile.FullName, ct) : null;
            if ((importFile ?? parse.GetValue(zoneinfo)) is { } info)
            {
                var text = imported ?? await File.ReadAllTextAsync(info.FullName, ct);
                foreach (var z in config.Nodes.SelectMany(n => n.Zones.Select(z => (n.Id, z))).ToList())
                {
                    if (PageAlloc.Domain.Import.ZoneInfoSize.ManagedPages(text, z.z.Name, z.Id) is { } managed)
                    {
                        config = config.WithZonePages(z.Id, z.z.Name, managed);
                    }
                }
            }
            if (config.Validate() is { Count: > 0 } problems)
            {
                error.WriteLine(string.Join("\n", problems));
                return 2;
            }
            var machine = new Machine(config);
            if (machine.FindZone(parse.GetValue(zone)!) is not { } preferred)
            {
                error.WriteLine($"There is no zone '{parse.GetValue(zone)}'. Zones: {string.Join(", ", machine.Zones.Select(z => z.Key))}.");
                return 2;
            }
            if (imported is not null)
            {
                foreach (var z in machine.Zones)
                {
                    if (PageAlloc.Domain.Import.FreeListCounts.Parse(imported, ZoneTypes.Name(z.Type), z.NodeId) is { } counts
                        && z.ImportFreeLists(counts, seed: 1, pageCache: true) is { } refused)
                    {
                        // (A small zone whose real counts cannot be laid out without merging, as DMA often is, stays as booted.)
                        error.WriteLine($"--import: zone {z.Key} stays as booted: {refused.Detail}");
                    }
                }
            }
            var path = parse.GetValue(file)!;
            await using var stream = path.OpenRead();
            var start = new byte[2];
            var gzip = await stream.ReadAsync(start, ct) == 2 && TraceInput.IsGzip(start);
            stream.Position = 0;
            var watch = Stopwatch.StartNew();
            if (parse.GetValue(maxLine) < 1 || parse.GetValue(maxBytes) < 0 || parse.GetValue(points) < 1 || parse.GetValue(every) < 1)
            {
                error.WriteLine("--max-line-bytes, --timeline-points and --timeline-every must be at least 1, --max-bytes at least 0.");
                return 1;
            }
            var bounds = new TextBounds(parse.GetValue(maxBytes) is > 0 and var b ? b : long.MaxValue, parse.GetValue(maxLine), "--max-bytes", "--max-line-bytes");
            var replayer = new TraceReplayer(machine, preferred, parse.GetValue(every), parse.GetValue(points))
            {
                // Progress on stderr at each timeline snapshot, for traces that take a while.
                OnSnapshot = s => error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"[{watch.Elapsed.TotalSeconds,7:F1}s] {s.Events} events, {s.Events / watch.Elapsed.TotalSeconds:F0}/s; {preferred.Key} unusable_index(9) {s.UnusableIndex[9]:0.000}")),
            };
            ReplayResult result;
            try
            {
                result = await replayer.ReplayAsync(TraceInput.Open(stream, gzip, bounds), ct);
            }
            catch (TextTooLargeException tooLarge)
            {
                error.WriteLine($"{path.Name}: {tooLarge.Message}");
                return TooLargeExit;
            }
            catch (InvalidDataException bad)
            {
                error.WriteLine(TraceInput.BadGzip(bad, path.Name));
                return NotATraceExit;
            }
            var seconds = watch.Elapsed.TotalSeconds;
            // As POST /replay's not-a-trace: a file with no kmem event is refused, not reported as an empty replay.
            if (TraceInput.NotATrace(result, path.Name) is { } notATrace)
            {
                error.WriteLine(notATrace);
                return NotATraceExit;
            }
            if (parse.GetValue(json))
            {
                output.WriteLine(JsonSerializer.Serialize(result, JsonOptions));
                return 0;
            }
            var c = CultureInfo.InvariantCulture;
            var k = result.Kernel;
            var s = result.Simulated;
            output.WriteLine(string.Create(c, $"{path.Name}: {result.Lines} lines, {result.Events} kmem events in {seconds:F3} s ({result.Events / seconds:F0} events/s); {result.NotEvents} lines were not kmem events"));
            output.WriteLine(string.Create(c, $"replayed: {result.Allocations} allocations, {result.Frees} frees, {result.Splits} split_page, {result.StaleFreed} stale blocks freed; {result.LiveAtEnd} blocks live at the end"));
            output.WriteLine("skipped: " + string.Join(", ", result.Skipped.Select(p => $"{p.Key} {p.Value}")));
            output.WriteLine("simulated allocation failures by order: " + string.Join(" ", result.SimulatedFailuresByOrder));
            output.WriteLine("                                   kernel (trace)      simulator");
            output.WriteLine(string.Create(c, $"blocks taken for pcp refills        {k.ZoneLockedRefillBlocksByOrder.Sum(),14} {s.PcpRefillPages,14} pages in {s.PcpRefills} refills (mean {s.MeanRefillPages})"));
            output.WriteLine(string.Create(c, $"blocks taken from the buddy direct  {k.ZoneLockedBuddyBlocksByOrder.Sum(),14} {s.BuddyAllocationsByOrder.Sum(),14}"));
            output.WriteLine(string.Create(c, $"pcp drains                          {k.PcpuDrainBlocks,14} {s.PcpDrains,14} ({s.PcpDrainPages} pages)"));
            output.WriteLine(string.Create(c, $"migratetype fallbacks               {k.ExtfragEvents,14} {s.FallbackClaims + s.FallbackSteals,14} (claim {s.FallbackClaims}, steal {s.FallbackSteals})"));
            foreach (var kind in k.FallbacksByMigratetype.Keys.Union(s.FallbacksByMigratetype.Keys).Order(StringComparer.Ordinal))
            {
                output.WriteLine(string.Create(c, $"  {kind,-34}{k.FallbacksByMigratetype.GetValueOrDefault(kind),14} {s.FallbacksByMigratetype.GetValueOrDefault(kind),14}"));
            }
            output.WriteLine(string.Create(c, $"vmstat intervals (pcp high decays) run by the trace's clock: {s.VmstatIntervals}"));
            output.WriteLine($"zone {result.Zone} at the end: buddyinfo {string.Join(" ", result.Final.Buddyinfo)}");
            output.WriteLine("unusable_index by order: " + string.Join(" ", result.Final.UnusableIndex.Select(v => v.ToString("0.000", c))));
            return 0;
        });
        return root;
    }
}
