using System.Globalization;
using PageAlloc.Client;

namespace PageAlloc.LoadGen;

/// <summary>What to run, how hard, for how long, and what counts as a failed run. Built by <see cref="LoadCommand"/>.</summary>
public sealed record LoadOptions
{
    public Uri Url { get; init; } = new("http://127.0.0.1:8080");

    /// <summary>seed, mixed or vmalloc.</summary>
    public string Workload { get; init; } = "seed";

    /// <summary>Closed model: the number of workers, each running steps back to back. Open model: the most steps in flight.</summary>
    public int Concurrency { get; init; } = 8;

    /// <summary>Open model: workload steps started per second whatever the latency (k6's constant-arrival-rate); null for the closed model.</summary>
    public double? Rate { get; init; }

    /// <summary>How long to run; ignored when <see cref="Requests"/> is set.</summary>
    public TimeSpan Duration { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Stop after about this many requests (workload steps finish whole).</summary>
    public long? Requests { get; init; }

    /// <summary>The machine to load (an existing one; default is the configured machine). Ignored with <see cref="Machines"/>.</summary>
    public string Machine { get; init; } = "default";

    /// <summary>
    /// Create this many private machines (of the default machine's shape) for the run, spread the
    /// workers over them, and delete them at the end, Ctrl+C included; null loads <see cref="Machine"/>.
    /// </summary>
    public int? Machines { get; init; }

    /// <summary>A zone, or several separated by commas to spread the workers over (each zone has its own lock).</summary>
    public string Zone { get; init; } = "Normal";

    /// <summary>Simulated CPUs to spread workers over: worker i uses cpu i % Cpus.</summary>
    public int Cpus { get; init; } = 4;

    /// <summary>free_contig_range / free_pages_bulk strategy.</summary>
    public FreeStrategy Strategy { get; init; } = FreeStrategy.Chunked;

    /// <summary>Random seed of the mixed workload (each worker derives its own).</summary>
    public int Seed { get; init; } = 1;

    /// <summary>Mixed workload: most blocks a worker holds at once.</summary>
    public int LiveBlocks { get; init; } = 64;

    /// <summary>vmalloc workload: pages per vmalloc.</summary>
    public int Pages { get; init; } = 64;

    public TimeSpan AttemptTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Threshold: the run fails when more than this fraction of its requests fail (0.01 = 1%).</summary>
    public double MaxErrorRate { get; init; } = 0.01;

    /// <summary>Threshold: the run fails when any operation's p99 latency is above this many milliseconds.</summary>
    public double? P99Ms { get; init; }

    public bool Json { get; init; }

    public bool Progress { get; init; } = true;

    /// <summary>Sent as X-Api-Key when the service has keys on.</summary>
    public string? ApiKey { get; init; }

    /// <summary>The strategy as the API spells it ("per-page").</summary>
    public string StrategyName => Strategies.Name(Strategy);

    /// <summary>"500ms", "10s", "2m", or plain seconds.</summary>
    public static bool TryParseDuration(string text, out TimeSpan duration)
    {
        var (number, unit) = text.EndsWith("ms", StringComparison.Ordinal) ? (text[..^2], 0.001)
            : text.EndsWith('s') ? (text[..^1], 1.0)
            : text.EndsWith('m') ? (text[..^1], 60.0)
            : (text, 1.0);
        var ok = double.TryParse(number, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) && value > 0 && value * unit < TimeSpan.MaxValue.TotalSeconds;
        duration = ok ? TimeSpan.FromSeconds(value * unit) : default;
        return ok;
    }
}

/// <summary>The free strategies by the names the API documents, from the generated client's enum.</summary>
public static class Strategies
{
    public static readonly IReadOnlyDictionary<string, FreeStrategy> ByName = Enum.GetValues<FreeStrategy>().ToDictionary(Name);

    public static string Name(FreeStrategy strategy) =>
        typeof(FreeStrategy).GetField(strategy.ToString())!
            .GetCustomAttributes(typeof(System.Text.Json.Serialization.JsonStringEnumMemberNameAttribute), false)
            .Cast<System.Text.Json.Serialization.JsonStringEnumMemberNameAttribute>().Single().Name;
}
