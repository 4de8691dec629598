using System.Globalization;
using System.Text.Json;

namespace PageAlloc.LoadGen;

/// <summary>The load generator's command line: run a workload against a PageAlloc service and report.</summary>
public static class Program
{
    public static async Task<int> Main(string[] args)
    {
        LoadOptions options;
        try
        {
            options = LoadOptions.Parse(args);
        }
        catch (FormatException e)
        {
            await Console.Error.WriteLineAsync(e.Message + "\n" + LoadOptions.Usage);
            return 2;
        }
        using var handler = new SocketsHttpHandler { MaxConnectionsPerServer = options.Concurrency, PooledConnectionLifetime = TimeSpan.FromMinutes(5) };
        using var http = new HttpClient(handler) { BaseAddress = options.Url, Timeout = Timeout.InfiniteTimeSpan };
        if (options.ApiKey is { } apiKey)
        {
            http.DefaultRequestHeaders.Add("X-Api-Key", apiKey);
        }
        var client = new PageAllocClient(http, ResiliencePipelines.Reads(options.AttemptTimeout), ResiliencePipelines.Writes(options.AttemptTimeout));
        using var cancel = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) =>
        {
            e.Cancel = true;
            cancel.Cancel();
        };
        LoadReport report;
        try
        {
            report = await LoadRunner.RunAsync(client, options, options.Progress ? Console.Error : null, cancel.Token);
        }
        catch (InvalidOperationException e)
        {
            await Console.Error.WriteLineAsync(e.Message);
            return 1;
        }
        Console.WriteLine(options.Json ? JsonSerializer.Serialize(report, JsonOptions) : Text(report));
        return report.EveryPageFreed ? 0 : 3;
    }

    private static readonly JsonSerializerOptions JsonOptions = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    public static string Text(LoadReport r)
    {
        var c = CultureInfo.InvariantCulture;
        var lines = new List<string>
        {
            string.Create(c, $"workload {r.Workload} (strategy {r.Strategy}) on zone {r.Zone}, {r.Concurrency} workers, {r.Seconds:F1} s: {r.Requests} requests, {r.RequestsPerSecond:F0} req/s"),
            "operation             count     req/s    p50 ms    p90 ms    p99 ms    max ms",
        };
        lines.AddRange(r.Operations.Select(o => string.Create(c,
            $"{o.Operation,-18} {o.Count,8} {o.PerSecond,9:F0} {o.P50Ms,9:F3} {o.P90Ms,9:F3} {o.P99Ms,9:F3} {o.MaxMs,9:F3}")));
        lines.Add(r.ErrorsByStatus.Count == 0 ? "errors: none"
            : "errors: " + string.Join(", ", r.ErrorsByStatus.Select(e => $"{e.Key}: {e.Value}")));
        var s = r.Server;
        lines.Add(string.Create(c, $"server: pgalloc +{s.PagesAllocated}, pgfree +{s.PagesFreed}, allocated pages {s.AllocatedPagesChange:+0;-0;0}, "
            + $"zone lock {s.ZoneLockAcquisitions} acquisitions, {s.ZoneLockContended} contended ({s.ZoneLockWaitNs / 1e6:F1} ms waiting), {s.PcpDrains} pcp drains"));
        lines.Add(r.EveryPageFreed
            ? string.Create(c, $"leak check: every page allocated was freed ({r.PagesAllocated} pages).")
            : string.Create(c, $"leak check: FAILED: {r.PagesAllocated} pages allocated, {r.PagesFreed} freed."));
        return string.Join('\n', lines);
    }
}
