using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using PageAlloc.Domain.Allocator;
using PageAlloc.Domain.Experiments;
using PageAlloc.Domain.Import;
using PageAlloc.Domain.Model;
using PageAlloc.Domain.Snapshots;

namespace PageAlloc.Experiment;

/// <summary>
/// The command line: an experiment in-process, as POST /machines/{machine}/experiments runs one, on
/// the default machine (fragmented if asked) or a machine snapshot (GET /machines/{m}/snapshot), with
/// any trace file. Prints the summary side by side; --json and --csv write the whole result. A
/// progress bar goes to stderr when it is a terminal (or with --progress); Ctrl+C cancels.
/// </summary>
public static class ExperimentCommand
{
    /// <summary>Exit code of a run whose spec does not validate (every problem printed).</summary>
    public const int InvalidExit = 2;

    private static readonly JsonSerializerOptions JsonOptions = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.KebabCaseLower) },
    };

    public static RootCommand Create()
    {
        var workload = new Option<string>("--workload") { Description = "trace, mix, seed-loop or vmalloc-loop.", DefaultValueFactory = _ => "trace" };
        workload.AcceptOnlyFromAmong("trace", "mix", "seed-loop", "vmalloc-loop");
        var trace = new Option<string>("--trace") { Description = $"A trace file (perf script, ftrace or trace-cmd text, gzip or not), or the name of one built in ({string.Join(", ", KnownTraces.Names)}).", DefaultValueFactory = _ => KnownTraces.GitCloneTar };
        var passes = new Option<int>("--passes") { Description = "Times the trace is read.", DefaultValueFactory = _ => 1 };
        var steps = new Option<int>("--steps") { Description = "Loop iterations or mix operations.", DefaultValueFactory = _ => 10_000 };
        var order = new Option<int>("--order") { Description = "The seed loop's order.", DefaultValueFactory = _ => 9 };
        var pages = new Option<int>("--pages") { Description = "The vmalloc loop's size in pages.", DefaultValueFactory = _ => 1024 };
        var rangeEvery = new Option<int>("--range-every") { Description = "With a mix or a trace: a range user's seed-loop iteration every this many steps (0: none).", DefaultValueFactory = _ => 0 };
        var rangeOrder = new Option<int>("--range-order") { Description = "The range user's order.", DefaultValueFactory = _ => 9 };
        var zone = new Option<string>("--zone") { Description = "The zone allocations prefer and whose free lists are sampled.", DefaultValueFactory = _ => "Normal" };
        var variants = new Option<string[]>("--variant")
        {
            Description = "A variant, NAME[:key=value,...] with keys strategy (per-page, chunked, upstream), min-free-kbytes, fail-probability, "
                + "fail-interval, fail-times, fail-min-order, fail-ignore-gfp-wait (fail_page_alloc's debugfs files: as in the kernel, times is 1 and "
                + "ignore-gfp-wait 1 until set, so GFP_KERNEL is left alone); repeat the option for more. Default: one per strategy.",
            AllowMultipleArgumentsPerToken = false,
        };
        var repeat = new Option<int>("--repeat") { Description = "Runs per variant (repeat r runs with seed + r).", DefaultValueFactory = _ => 1 };
        var seed = new Option<int>("--seed") { Description = "The mix's seed.", DefaultValueFactory = _ => 1 };
        var points = new Option<int>("--points") { Description = "The most timeline samples per run.", DefaultValueFactory = _ => 200 };
        var parallelism = new Option<int>("--parallelism") { Description = "Runs at once, each on its own fork and thread.", DefaultValueFactory = _ => Environment.ProcessorCount };
        var snapshot = new Option<FileInfo>("--snapshot") { Description = "Experiment on this machine snapshot (GET /machines/{m}/snapshot) instead of the default machine." };
        snapshot.AcceptExistingOnly();
        var fragment = new Option<string>("--fragment") { Description = "Fragment the zone first, as POST .../fragment does: FREE_PAGES:ORDER:UNUSABLE_INDEX (e.g. 262144:9:0.9)." };
        var json = new Option<FileInfo>("--json") { Description = "Write the whole result (every timeline) as JSON to this file." };
        var csv = new Option<FileInfo>("--csv") { Description = "Write the timelines as CSV to this file." };
        var progress = new Option<bool>("--progress") { Description = "Show the progress bar even when stderr is not a terminal." };
        var root = new RootCommand("Runs one workload on forks of a machine, one per variant and repeat, and prints the variants side by side. "
            + "Exit codes: 0 done, 1 bad command line, 2 an experiment that does not validate (every problem printed), 130 cancelled.")
        {
            workload, trace, passes, steps, order, pages, rangeEvery, rangeOrder, zone, variants, repeat, seed, points, parallelism, snapshot, fragment, json, csv, progress,
        };
        root.SetAction(async (parse, ct) =>
        {
            var output = parse.InvocationConfiguration.Output;
            var error = parse.InvocationConfiguration.Error;
            var machine = parse.GetValue(snapshot) is { } file ? MachineSnapshot.Read(file.OpenRead()) : new Machine(MachineConfig.Default());
            if (parse.GetValue(fragment) is { } f && Fragment(machine, parse.GetValue(zone)!, f) is { } fragmentProblem)
            {
                error.WriteLine(fragmentProblem);
                return InvalidExit;
            }
            var kind = parse.GetValue(workload) switch
            {
                "mix" => WorkloadKind.Mix,
                "seed-loop" => WorkloadKind.SeedLoop,
                "vmalloc-loop" => WorkloadKind.VmallocLoop,
                _ => WorkloadKind.Trace,
            };
            var traceName = parse.GetValue(trace)!;
            var source = kind != WorkloadKind.Trace ? null : KnownTraces.Exists(traceName) ? KnownTraces.Source(traceName)
                : File.Exists(traceName) ? WorkloadTrace.FromFile(traceName) : null;
            var spec = new ExperimentSpec(
                new WorkloadSpec(kind, parse.GetValue(zone)!, parse.GetValue(steps), parse.GetValue(order), parse.GetValue(pages), kind == WorkloadKind.Trace ? source?.Name ?? traceName : null,
                    parse.GetValue(passes), RangeEvery: parse.GetValue(rangeEvery), RangeOrder: parse.GetValue(rangeOrder)) { Source = source },
                [], parse.GetValue(repeat), parse.GetValue(seed), parse.GetValue(points));
            var parsed = ParseVariants(parse.GetValue(variants));
            if (parsed.Problem is { } variantProblem)
            {
                error.WriteLine(variantProblem);
                return InvalidExit;
            }
            spec = spec with { Variants = parsed.Variants };
            if (spec.Validate(machine) is { Count: > 0 } problems)
            {
                foreach (var (field, problem) in problems)
                {
                    error.WriteLine($"{field}: {problem}");
                }
                return InvalidExit;
            }
            var total = Workloads.StepsOf(spec.Workload) * spec.Runs;
            long done = 0;
            var watch = Stopwatch.StartNew();
            using var bar = parse.GetValue(progress) || !Console.IsErrorRedirected
                ? new Timer(_ => DrawBar(error, Interlocked.Read(ref done), total, watch.Elapsed), null, 0, 250)
                : null;
            ExperimentResult result;
            try
            {
                result = await Task.Factory.StartNew(() => ExperimentRunner.Run(machine, spec, parse.GetValue(parallelism), d => Interlocked.Add(ref done, d), ct),
                    ct, TaskCreationOptions.LongRunning, TaskScheduler.Default);
            }
            catch (OperationCanceledException)
            {
                error.WriteLine();
                error.WriteLine("Cancelled.");
                return 130;
            }
            bar?.Dispose();
            if (bar is not null)
            {
                DrawBar(error, total, total, watch.Elapsed);
                error.WriteLine();
            }
            if (parse.GetValue(json) is { } jsonFile)
            {
                await using var stream = jsonFile.Create();
                await JsonSerializer.SerializeAsync(stream, result, JsonOptions, ct);
            }
            if (parse.GetValue(csv) is { } csvFile)
            {
                await File.WriteAllTextAsync(csvFile.FullName, ExperimentSummary.TimelineCsv(result), ct);
            }
            WriteSummary(output, result, watch.Elapsed);
            return 0;
        });
        return root;
    }

    /// <summary>The --variant values as variants; the three strategies when none is given.</summary>
    internal static (List<VariantSpec> Variants, string? Problem) ParseVariants(string[]? values)
    {
        if (values is not { Length: > 0 })
        {
            return ([.. Enum.GetValues<FreeStrategy>().Select(s => new VariantSpec(FreeStrategies.Name(s), s))], null);
        }
        var variants = new List<VariantSpec>();
        foreach (var value in values)
        {
            var colon = value.IndexOf(':', StringComparison.Ordinal);
            var variant = new VariantSpec(colon < 0 ? value : value[..colon]);
            FaultSpec? faults = null;
            foreach (var pair in colon < 0 ? [] : value[(colon + 1)..].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                var (key, text) = pair.IndexOf('=', StringComparison.Ordinal) is var eq and > 0 ? (pair[..eq], pair[(eq + 1)..]) : (pair, "");
                var number = long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var n);
                switch (key)
                {
                    case "strategy" when FreeStrategies.TryParse(text, out var strategy):
                        variant = variant with { Strategy = strategy };
                        break;
                    case "min-free-kbytes" when number:
                        variant = variant with { MinFreeKbytes = n };
                        break;
                    case "fail-probability" when number && n is >= 0 and <= 100:
                        faults = (faults ?? new()) with { Probability = (int)n };
                        break;
                    case "fail-interval" when number:
                        faults = (faults ?? new()) with { Interval = n };
                        break;
                    case "fail-times" when number && n is >= int.MinValue and <= int.MaxValue:
                        faults = (faults ?? new()) with { Times = (int)n };
                        break;
                    case "fail-min-order" when number && n is >= 0 and <= PageAllocConstants.MaxPageOrder:
                        faults = (faults ?? new()) with { MinOrder = (int)n };
                        break;
                    case "fail-ignore-gfp-wait" when text is "0" or "1":
                        faults = (faults ?? new()) with { IgnoreGfpWait = text == "1" };
                        break;
                    default:
                        return ([], $"--variant {value}: '{pair}' is not strategy=per-page|chunked|upstream, min-free-kbytes=N, fail-probability=0..100, fail-interval=N, fail-times=N, fail-min-order=0..10 or fail-ignore-gfp-wait=0|1.");
                }
            }
            variants.Add(variant with { FailPageAlloc = faults });
        }
        return (variants, null);
    }

    /// <summary>POST .../fragment's fragmenter on the zone; the problem, or null.</summary>
    private static string? Fragment(Machine machine, string zoneName, string target)
    {
        var parts = target.Split(':');
        var c = CultureInfo.InvariantCulture;
        if (machine.FindZone(zoneName) is not { } zone)
        {
            return $"--fragment: there is no zone '{zoneName}'.";
        }
        if (parts.Length != 3 || !long.TryParse(parts[0], NumberStyles.None, c, out var free) || !int.TryParse(parts[1], NumberStyles.None, c, out var order)
            || !double.TryParse(parts[2], NumberStyles.AllowDecimalPoint, c, out var unusable) || free > zone.ManagedPages
            || Fragmenter.Target(zone.Key, free, order, unusable, 1) is not { } counts)
        {
            return $"--fragment {target}: FREE_PAGES:ORDER:UNUSABLE_INDEX, free pages at most the zone's {zone.ManagedPages}, order 1..10, unusable index 0..1.";
        }
        return zone.ImportFreeLists(counts, 1)?.Detail;
    }

    private static void DrawBar(TextWriter error, long done, long total, TimeSpan elapsed)
    {
        var fraction = total == 0 ? 1 : Math.Min(1, (double)done / total);
        var filled = (int)(fraction * 40);
        error.Write(string.Create(CultureInfo.InvariantCulture, $"\r[{new string('#', filled)}{new string('.', 40 - filled)}] {fraction,6:P1} {done}/{total} steps, {elapsed.TotalSeconds:F1} s"));
    }

    private static void WriteSummary(TextWriter output, ExperimentResult result, TimeSpan elapsed)
    {
        var c = CultureInfo.InvariantCulture;
        var w = result.Spec.Workload;
        var names = result.Variants.Select(v => v.Variant).ToList();
        output.WriteLine(string.Create(c, $"{w.Kind} {w.Trace ?? ""} on zone {w.Zone}: {names.Count} variants x {result.Spec.Repeat} repeats in {elapsed.TotalSeconds:F1} s; "
            + $"median [min..max] over the repeats, (median paired difference from {names[0]})"));
        var width = Math.Max(24, names.Max(n => n.Length) + 2);
        output.WriteLine("measure".PadRight(34) + string.Concat(names.Select(n => n.PadLeft(width + 14))));
        foreach (var row in result.Summary.GroupBy(s => s.Measure))
        {
            static string F(double x) => Math.Abs(x) >= 100 || x == Math.Floor(x) ? x.ToString("0", CultureInfo.InvariantCulture) : x.ToString("0.###", CultureInfo.InvariantCulture);
            var cells = row.Select(s => $"{F(s.Median)} [{F(s.Min)}..{F(s.Max)}]" + (s.Variant == names[0] ? "" : $" ({(s.DifferenceMedian >= 0 ? "+" : "")}{F(s.DifferenceMedian)})"));
            output.WriteLine(row.Key.PadRight(34) + string.Concat(cells.Select(x => x.PadLeft(width + 14))));
        }
    }
}
