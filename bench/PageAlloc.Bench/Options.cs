using System.CommandLine;
using System.CommandLine.Parsing;
using PageAlloc.Domain.Model;

namespace PageAlloc.Bench;

/// <summary>What a benchmark command runs: iterations, the block order, the vmalloc size, one strategy or all, JSON output, the seed's rounds.</summary>
internal sealed record Options(int Iterations, int Order, int Pages, FreeStrategy? Strategy, bool Json, int Rounds);

/// <summary>
/// The command line (System.CommandLine): seed, parts, vmalloc, zonesize, trace, snapshot, replay and micro, each with the
/// options it reads; `--help` on any of them lists them, a bad value is refused by name.
/// </summary>
internal static class BenchCommand
{
    private static readonly Option<int> Iterations = Positive("--iterations", "Loop iterations.", 100_000);

    // vmalloc's iteration is a whole vmalloc() + vfree() of --pages pages, so it has its own default.
    private static readonly Option<int> VmallocIterations = Positive("--iterations", "vmalloc() + vfree() rounds, each of --pages pages, timed per strategy.", 1000);

    private static readonly Option<int> Order = new("--order")
    {
        Description = "The block order of the seed loop (9 is HPAGE_PMD_ORDER).",
        DefaultValueFactory = _ => 9,
        Validators = { r => Range(r, 1, PageAllocConstants.MaxPageOrder) },
    };

    private static readonly Option<int> Rounds = Positive("--rounds", "seed: rounds, each timing the floor and every strategy; medians are reported.", 5);

    private static readonly Option<int> Pages = Positive("--pages", "vmalloc: pages per vmalloc.", 4096);

    private static readonly Option<string> Strategy = new Option<string>("--strategy")
    {
        Description = "One free strategy, or all of them.",
        DefaultValueFactory = _ => "all",
    }.AcceptOnlyFromAmong([.. FreeStrategies.All.Select(s => s.Name), "all"]);

    private static readonly Option<bool> Json = new("--json") { Description = "Print one JSON object instead of a table." };

    public static RootCommand Create()
    {
        var root = new RootCommand("PageAlloc's benchmarks. Ratios within one run are what to compare: the machines are noisy.");
        root.Add(Command("seed", "page_alloc_high_order_test for each strategy against the run's own floor.", SeedCommand.Run,
            Iterations, Order, Strategy, Json, Rounds));
        root.Add(Command("parts", "The seed loop taken apart: each of its calls timed alone, at the loop's order and at its smallest, beside the loop and the floor.",
            PartsCommand.Run, Iterations, Order));
        root.Add(Command("vmalloc", "The vmalloc/vfree workload of patch 2/3: free_pages_bulk with each strategy.", VmallocCommand.Run,
            Pages, VmallocIterations, Strategy));
        root.Add(Command("zonesize", $"Boots a 1 TiB zone and compares alloc + free pairs on it with a 1 GiB zone. Needs {ZoneSizeCommand.Needs}.", ZoneSizeCommand.Run,
            Iterations));
        root.Add(Command("trace", "The seed loop with nobody listening and with a listener on every tracepoint, alternating.", TraceCostCommand.Run,
            Iterations, Order, Strategy));
        root.Add(Command("snapshot", "MachineSnapshot.Write, Read and Machine.Fork on the default machine after the seed flow, a mixed load and a fragmented one: times (median, min-max) and sizes.",
            SnapshotCommand.Run, Iterations, Order, Strategy, Json, Rounds));
        root.Add(ReplayBenchCommand.Create());
        var micro = new Command("micro", "BenchmarkDotNet micro benchmarks; the rest of the command line goes to BenchmarkDotNet (e.g. --filter '*AllocFree*').")
        {
            TreatUnmatchedTokensAsErrors = false,
        };
        micro.SetAction(parse =>
        {
            BenchmarkDotNet.Running.BenchmarkSwitcher.FromAssembly(typeof(AllocFreeBenchmarks).Assembly).Run([.. parse.UnmatchedTokens]);
            return 0;
        });
        root.Add(micro);
        return root;
    }

    private static Command Command(string name, string description, Func<Options, int> run, params Option[] options)
    {
        var command = new Command(name, description);
        foreach (var option in options)
        {
            command.Add(option);
        }
        command.SetAction(parse => run(OptionsFrom(parse)));
        return command;
    }

    /// <summary>The options a parsed subcommand runs with.</summary>
    internal static Options OptionsFrom(ParseResult parse)
    {
        var strategy = parse.GetValue(Strategy);
        return new Options(
            parse.GetValue<int>("--iterations"), parse.GetValue(Order), parse.GetValue(Pages),
            strategy is null or "all" ? null : FreeStrategies.All.Single(s => s.Name == strategy).Strategy,
            parse.GetValue(Json), parse.GetValue(Rounds));
    }

    private static Option<int> Positive(string name, string description, int defaultValue) => new(name)
    {
        Description = description,
        DefaultValueFactory = _ => defaultValue,
        Validators = { r => Range(r, 1, int.MaxValue) },
    };

    private static void Range(OptionResult result, int min, int max)
    {
        if (result.Tokens.Count > 0 && result.GetValueOrDefault<int>() is var value && (value < min || value > max))
        {
            result.AddError($"{result.Option.Name} must be {min}..{max}, not {value}.");
        }
    }
}
