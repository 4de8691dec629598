using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using PageAlloc.Domain.Model;
using PageAlloc.Domain.Testing;

namespace PageAlloc.Bench;

/// <summary>
/// `seed`: page_alloc_high_order_test for each strategy on a fresh default machine, the floor
/// measured in the same rounds, and a table of medians (or one JSON object with --json).
/// </summary>
internal static class SeedCommand
{
    public static int Run(Options options)
    {
        var strategies = options.Strategy is { } one ? [one] : Enum.GetValues<FreeStrategy>();
        var config = MachineConfig.Default();

        WarmUp.Run(() => Floor.NsPerIteration(20000, options.Order));
        foreach (var s in strategies)
        {
            WarmUp.Run(() => PageAllocHighOrderTest.Run(config, "Normal", s, 2000, options.Order));
        }

        // Rounds, each timing the floor and then every strategy: a ratio is taken within its round,
        // and the medians are reported. One timed run after the warm-up is not enough here: the
        // loop's method can still be running its on-stack-replacement code when a single run starts
        // (seen as 210-260 ns instead of 135 for chunked, in the first round only).
        var floors = new List<double>();
        var runs = strategies.ToDictionary(s => s, _ => new List<HighOrderTestResult>());
        var ratios = strategies.ToDictionary(s => s, _ => new List<double>());
        for (var round = 0; round < options.Rounds; round++)
        {
            var floor = Floor.NsPerIteration(options.Iterations, options.Order);
            floors.Add(floor);
            foreach (var s in strategies)
            {
                var result = PageAllocHighOrderTest.Run(config, "Normal", s, options.Iterations, options.Order);
                if (result.Error is { } error)
                {
                    Console.Error.WriteLine(error);
                    return 1;
                }
                runs[s].Add(result.Value);
                ratios[s].Add(result.Value.NsPerIteration / floor);
            }
        }
        var floorNs = Median(floors);
        // Each strategy's median round stands for it (its time and the state it left).
        var results = strategies.Select(s => runs[s].OrderBy(r => r.NsPerIteration).ElementAt(runs[s].Count / 2)).ToList();
        var perPage = results.FirstOrDefault(r => r.Strategy == FreeStrategy.PerPage);
        var rows = results.Select(r => new SeedRow(
            FreeStrategies.Name(r.Strategy), r.TotalMicroseconds, Math.Round(r.NsPerIteration, 1),
            perPage is null ? null : Math.Round(perPage.NsPerIteration / r.NsPerIteration, 2),
            Math.Round(Median(ratios[r.Strategy]), 2), r.State)).ToList();

        if (options.Json)
        {
            var report = new SeedReport(options.Iterations, options.Order, options.Rounds, Math.Round(floorNs, 1), rows);
            Console.WriteLine(JsonSerializer.Serialize(report, Json));
            return 0;
        }
        var c = CultureInfo.InvariantCulture;
        Console.WriteLine(string.Create(c, $"page_alloc_high_order_test: {options.Iterations} x (alloc_pages(GFP_KERNEL, {options.Order}), split_page, free_contig_range(pfn, {1 << options.Order})), zone Normal, cpu 0"));
        Console.WriteLine(string.Create(c, $"floor (vectorised refcount and flag work only): {floorNs:F1} ns/iteration; medians of {options.Rounds} rounds, x/floor within each round"));
        Console.WriteLine();
        Console.WriteLine("strategy   total us   ns/iter  per-page/x  x/floor | buddy o{0,-2} pcp o{0,-2} o0 pcp pages  zone locks  pcp drains", options.Order);
        foreach (var r in rows)
        {
            Console.WriteLine(string.Create(c,
                $"{r.Strategy,-9} {r.TotalMicroseconds,9} {r.NsPerIteration,9:F1} {r.PerPageOverThis,11:F2} {r.ThisOverFloor,8:F2} | {r.State.BuddyBlocksOfOrder,9} {r.State.PcpBlocksOfOrder,7} {r.State.Order0PcpPages,14} {r.State.ZoneLockAcquisitions,11} {r.State.PcpDrains,11}"));
        }
        foreach (var s in strategies)
        {
            Console.WriteLine(string.Create(c,
                $"{FreeStrategies.Name(s),-9} rounds: {string.Join(", ", runs[s].Select(r => r.NsPerIteration.ToString("F1", c)))} ns/iteration; x/floor {ratios[s].Min():F2}-{ratios[s].Max():F2}"));
        }
        return 0;
    }

    private static double Median(List<double> values) => values.Order().ElementAt(values.Count / 2);

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.KebabCaseLower) },
    };
}

internal sealed record SeedRow(string Strategy, long TotalMicroseconds, double NsPerIteration, double? PerPageOverThis, double ThisOverFloor, PostRunState State);

internal sealed record SeedReport(int Iterations, int Order, int Rounds, double FloorNsPerIteration, List<SeedRow> Strategies);
