using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;

namespace PageAlloc.LoadGen;

/// <summary>
/// The command line (System.CommandLine): every option with its help text, default and validation,
/// turned into <see cref="LoadOptions"/>. `--help` lists them; a bad value is refused by name.
/// </summary>
public static class LoadCommand
{
    private static readonly LoadOptions Defaults = new();

    private static readonly Option<Uri> Url = new("--url")
    {
        HelpName = "url",
        Description = "The PageAlloc service to load.",
        DefaultValueFactory = _ => Defaults.Url,
        CustomParser = r => Uri.TryCreate(r.Tokens[0].Value, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https"
            ? uri : Fail<Uri>(r, $"'{r.Tokens[0].Value}' is not an http(s) URL."),
    };

    private static readonly Option<string> Workload = new Option<string>("--workload")
    {
        Description = "seed: alloc order 9, split_page, free_contig_range (the seed's test). mixed: orders 0-3 with a live set. vmalloc: vmalloc and vfree of --pages pages.",
        DefaultValueFactory = _ => Defaults.Workload,
    }.AcceptOnlyFromAmong("seed", "mixed", "vmalloc");

    private static readonly Option<int> Concurrency = Positive("--concurrency", "Workers (closed model), or the most steps in flight (--rate).", Defaults.Concurrency);

    private static readonly Option<double?> Rate = new("--rate")
    {
        Description = "Open model: start this many workload steps per second, however slow the answers; steps that find every worker busy are counted as dropped. Without it, each worker runs steps back to back (closed model).",
        CustomParser = r => double.TryParse(r.Tokens[0].Value, NumberStyles.Float, CultureInfo.InvariantCulture, out var rate) && rate > 0
            ? rate : Fail<double?>(r, $"'{r.Tokens[0].Value}' is not a positive rate."),
    };

    private static readonly Option<string> Duration = DurationOption("--duration", "How long to run (10s, 500ms, 2m). Ignored with --requests.", Defaults.Duration);

    private static readonly Option<long?> Requests = new("--requests")
    {
        Description = "Stop after about this many requests instead (steps finish whole).",
        CustomParser = r => long.TryParse(r.Tokens[0].Value, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n > 0
            ? n : Fail<long?>(r, $"'{r.Tokens[0].Value}' is not a positive number."),
    };

    private static readonly Option<string> Machine = new("--machine")
    {
        Description = "The machine to load, by name (GET /machines lists them); default is the configured machine.",
        DefaultValueFactory = _ => Defaults.Machine,
    };

    private static readonly Option<int?> Machines = new("--machines")
    {
        Description = "Create N private machines for the run (the default machine's shape), spread the workers over them, and delete them "
            + "at the end (Ctrl+C included); the report is per machine and in total.",
        CustomParser = r => int.TryParse(r.Tokens[0].Value, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n is > 0 and <= 1000
            ? n : Fail<int?>(r, $"'{r.Tokens[0].Value}' is not a number of machines in 1..1000."),
    };

    private static readonly Option<string> Zone = new("--zone")
    {
        Description = "A zone, or several separated by commas to spread the workers over (each zone has its own lock).",
        DefaultValueFactory = _ => Defaults.Zone,
    };

    private static readonly Option<int> Cpus = Positive("--cpus", "Simulated cpus to spread the workers over: worker i uses cpu i % cpus.", Defaults.Cpus);

    private static readonly Option<string> Strategy = new Option<string>("--strategy")
    {
        Description = "The free strategy of free_contig_range and free_pages_bulk.",
        DefaultValueFactory = _ => Defaults.StrategyName,
    }.AcceptOnlyFromAmong([.. Strategies.ByName.Keys]);

    private static readonly Option<int> Seed = new("--seed") { Description = "Random seed of the mixed workload.", DefaultValueFactory = _ => Defaults.Seed };

    private static readonly Option<int> Live = Positive("--live", "mixed: the most blocks a worker holds at once.", Defaults.LiveBlocks);

    private static readonly Option<int> Pages = Positive("--pages", "vmalloc: pages per vmalloc.", Defaults.Pages);

    private static readonly Option<string> Timeout = DurationOption("--timeout", "Per-attempt timeout of each call.", Defaults.AttemptTimeout);

    private static readonly Option<double> MaxErrorRate = new("--max-error-rate")
    {
        Description = "Threshold: fail the run (exit 4) when more than this fraction of requests fail. 1 turns it off.",
        DefaultValueFactory = _ => Defaults.MaxErrorRate,
        CustomParser = r => double.TryParse(r.Tokens[0].Value, NumberStyles.Float, CultureInfo.InvariantCulture, out var rate) && rate is >= 0 and <= 1
            ? rate : Fail<double>(r, $"'{r.Tokens[0].Value}' is not a fraction between 0 and 1."),
    };

    private static readonly Option<double?> P99Ms = new("--p99-ms")
    {
        Description = "Threshold: fail the run (exit 4) when any operation's p99 latency is above this many milliseconds.",
        CustomParser = r => double.TryParse(r.Tokens[0].Value, NumberStyles.Float, CultureInfo.InvariantCulture, out var ms) && ms > 0
            ? ms : Fail<double?>(r, $"'{r.Tokens[0].Value}' is not a positive number of milliseconds."),
    };

    private static readonly Option<string?> ApiKey = new("--api-key")
    {
        Description = "Sent as X-Api-Key, for a service with API keys on. Default: the PAGEALLOC_API_KEY environment variable.",
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable("PAGEALLOC_API_KEY") is { Length: > 0 } key ? key : null,
    };

    private static readonly Option<bool> Json = new("--json") { Description = "Print the report as JSON." };

    private static readonly Option<bool> NoProgress = new("--no-progress") { Description = "No progress on stderr while running." };

    public static RootCommand Create(Func<LoadOptions, CancellationToken, Task<int>> run)
    {
        var command = new RootCommand(
            "Loads a PageAlloc service with a workload, frees every page the run allocated, and reports rates, latency percentiles "
            + "(HdrHistogram), errors and the server's own counters. Ctrl+C (or SIGTERM) stops it cleanly: steps in flight finish, "
            + "the pages held are freed, and the report is printed; a second Ctrl+C aborts. "
            + "Exit codes: 0 passed, 1 service unreachable, 2 bad command line, 3 pages left allocated, 4 a threshold crossed, 130 interrupted.")
        {
            Url, Workload, Concurrency, Rate, Duration, Requests, Machine, Machines, Zone, Cpus, Strategy, Seed, Live, Pages, Timeout, MaxErrorRate, P99Ms, ApiKey, Json, NoProgress,
        };
        command.SetAction((parse, ct) => run(OptionsFrom(parse), ct));
        return command;
    }

    public static LoadOptions OptionsFrom(ParseResult parse) => new()
    {
        Url = parse.GetValue(Url)!,
        Workload = parse.GetValue(Workload)!,
        Concurrency = parse.GetValue(Concurrency),
        Rate = parse.GetValue(Rate),
        Duration = DurationOf(parse, Duration),
        Requests = parse.GetValue(Requests),
        Machine = parse.GetValue(Machine)!,
        Machines = parse.GetValue(Machines),
        Zone = parse.GetValue(Zone)!,
        Cpus = parse.GetValue(Cpus),
        Strategy = Strategies.ByName[parse.GetValue(Strategy)!],
        Seed = parse.GetValue(Seed),
        LiveBlocks = parse.GetValue(Live),
        Pages = parse.GetValue(Pages),
        AttemptTimeout = DurationOf(parse, Timeout),
        MaxErrorRate = parse.GetValue(MaxErrorRate),
        P99Ms = parse.GetValue(P99Ms),
        ApiKey = parse.GetValue(ApiKey),
        Json = parse.GetValue(Json),
        Progress = !parse.GetValue(NoProgress),
    };

    private static Option<int> Positive(string name, string description, int defaultValue) => new(name)
    {
        Description = description,
        DefaultValueFactory = _ => defaultValue,
        CustomParser = r => int.TryParse(r.Tokens[0].Value, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n > 0
            ? n : Fail<int>(r, $"'{r.Tokens[0].Value}' is not a positive number."),
    };

    /// <summary>A duration written as the user writes it ("10s", "500ms", "2m"), so --help shows the default that way too.</summary>
    private static Option<string> DurationOption(string name, string description, TimeSpan defaultValue)
    {
        var option = new Option<string>(name)
        {
            Description = description,
            HelpName = "duration",
            DefaultValueFactory = _ => FormattableString.Invariant($"{defaultValue.TotalSeconds:0.###}s"),
        };
        option.Validators.Add(r =>
        {
            var text = r.Tokens.Count > 0 ? r.Tokens[0].Value : null;
            if (text is not null && !LoadOptions.TryParseDuration(text, out _))
            {
                r.AddError($"{name}: '{text}' is not a duration (e.g. 10s, 500ms, 2m).");
            }
        });
        return option;
    }

    private static TimeSpan DurationOf(ParseResult parse, Option<string> option) =>
        LoadOptions.TryParseDuration(parse.GetValue(option)!, out var duration) ? duration : throw new InvalidOperationException("validated by the parser");

    private static T Fail<T>(ArgumentResult result, string message)
    {
        result.AddError($"{((OptionResult)result.Parent!).Option.Name}: {message}");
        return default!;
    }
}
