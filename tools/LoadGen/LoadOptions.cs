using System.Globalization;

namespace PageAlloc.LoadGen;

/// <summary>What to run, how hard and for how long. Parsed from the command line.</summary>
public sealed record LoadOptions
{
    public Uri Url { get; init; } = new("http://127.0.0.1:8080");

    /// <summary>seed, mixed or vmalloc.</summary>
    public string Workload { get; init; } = "seed";

    public int Concurrency { get; init; } = 8;

    /// <summary>How long to run; ignored when <see cref="Requests"/> is set.</summary>
    public TimeSpan Duration { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Stop after about this many requests (workload steps finish whole).</summary>
    public long? Requests { get; init; }

    /// <summary>A zone, or several separated by commas to spread the workers over (each zone has its own lock).</summary>
    public string Zone { get; init; } = "Normal";

    /// <summary>Simulated CPUs to spread workers over: worker i uses cpu i % Cpus.</summary>
    public int Cpus { get; init; } = 4;

    /// <summary>free_contig_range / free_pages_bulk strategy.</summary>
    public string Strategy { get; init; } = "chunked";

    /// <summary>Random seed of the mixed workload (each worker derives its own).</summary>
    public int Seed { get; init; } = 1;

    /// <summary>Mixed workload: most blocks a worker holds at once.</summary>
    public int LiveBlocks { get; init; } = 64;

    /// <summary>vmalloc workload: pages per vmalloc.</summary>
    public int Pages { get; init; } = 64;

    public TimeSpan AttemptTimeout { get; init; } = TimeSpan.FromSeconds(5);

    public bool Json { get; init; }

    public bool Progress { get; init; } = true;

    /// <summary>Sent as X-Api-Key when the service has keys on (default: the PAGEALLOC_API_KEY environment variable).</summary>
    public string? ApiKey { get; init; } = Environment.GetEnvironmentVariable("PAGEALLOC_API_KEY") is { Length: > 0 } key ? key : null;

    public const string Usage =
        "usage: PageAlloc.LoadGen [--url http://127.0.0.1:8080] [--workload seed|mixed|vmalloc] [--concurrency N]\n" +
        "                         [--duration 10s | --requests N] [--zone Normal[,DMA32]] [--cpus 4] [--strategy chunked]\n" +
        "                         [--seed 1] [--live 64] [--pages 64] [--timeout 5s] [--api-key KEY] [--json] [--no-progress]";

    public static LoadOptions Parse(string[] args)
    {
        var o = new LoadOptions();
        for (var i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new FormatException($"{args[i]} needs a value");
            o = args[i] switch
            {
                "--url" => o with { Url = new Uri(Next()) },
                "--workload" => o with { Workload = Next() is "seed" or "mixed" or "vmalloc" ? args[i] : throw new FormatException($"unknown workload '{args[i]}'") },
                "--concurrency" => o with { Concurrency = Positive(Next()) },
                "--duration" => o with { Duration = ParseDuration(Next()) },
                "--requests" => o with { Requests = Positive(Next()) },
                "--zone" => o with { Zone = Next() },
                "--cpus" => o with { Cpus = Positive(Next()) },
                "--strategy" => o with { Strategy = Next() is "per-page" or "chunked" or "upstream" ? args[i] : throw new FormatException($"unknown strategy '{args[i]}'") },
                "--seed" => o with { Seed = int.Parse(Next(), CultureInfo.InvariantCulture) },
                "--live" => o with { LiveBlocks = Positive(Next()) },
                "--pages" => o with { Pages = Positive(Next()) },
                "--timeout" => o with { AttemptTimeout = ParseDuration(Next()) },
                "--api-key" => o with { ApiKey = Next() },
                "--json" => o with { Json = true },
                "--no-progress" => o with { Progress = false },
                _ => throw new FormatException($"unknown option '{args[i]}'"),
            };
        }
        return o;
    }

    private static int Positive(string text) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n > 0 ? n : throw new FormatException($"'{text}' is not a positive number");

    /// <summary>"500ms", "10s", "2m", or plain seconds.</summary>
    public static TimeSpan ParseDuration(string text)
    {
        var (number, unit) = text.EndsWith("ms", StringComparison.Ordinal) ? (text[..^2], 0.001)
            : text.EndsWith('s') ? (text[..^1], 1.0)
            : text.EndsWith('m') ? (text[..^1], 60.0)
            : (text, 1.0);
        return double.TryParse(number, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) && value > 0
            ? TimeSpan.FromSeconds(value * unit)
            : throw new FormatException($"'{text}' is not a duration (e.g. 10s, 500ms, 2m)");
    }
}
