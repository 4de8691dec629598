using System.Diagnostics;
using System.Text.Json.Nodes;

namespace PageAlloc.LoadGen;

/// <summary>
/// Runs a workload with N concurrent workers for a duration or a request budget, then frees what
/// the workers still hold, and compares the server's /stats before and after.
/// </summary>
public static class LoadRunner
{
    public static async Task<LoadReport> RunAsync(PageAllocClient client, LoadOptions options, TextWriter? progress, CancellationToken ct)
    {
        var before = await client.GetStats(ct);
        if (!before.IsSuccess)
        {
            throw new InvalidOperationException($"GET /stats failed ({before.Status} {before.Failure}): is the service running at {options.Url}?");
        }
        var recorder = new Recorder();
        var workers = Enumerable.Range(0, options.Concurrency).Select(i => new Worker(client, options, recorder, i)).ToArray();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        if (options.Requests is null)
        {
            stop.CancelAfter(options.Duration);
        }
        var watch = Stopwatch.StartNew();
        var progressTask = progress is null ? Task.CompletedTask : ReportProgress(recorder, watch, progress, stop.Token);
        await Task.WhenAll(workers.Select(async w =>
        {
            while (!stop.IsCancellationRequested && (options.Requests is not { } budget || recorder.Requests < budget))
            {
                await w.Step(ct); // a step runs whole, so a block is never left half freed
            }
        }));
        var elapsed = watch.Elapsed;
        await stop.CancelAsync();
        await progressTask;
        progress?.WriteLine();

        recorder.Timing = false;
        foreach (var w in workers)
        {
            await w.Drain(ct);
        }
        var after = await client.GetStats(ct);
        var (allocated, freed) = recorder.Pages;
        return new LoadReport(
            options.Workload, options.Strategy, options.Zone, options.Concurrency, Math.Round(elapsed.TotalSeconds, 3),
            recorder.Requests, Math.Round(recorder.Requests / elapsed.TotalSeconds, 1),
            recorder.Operations(elapsed), recorder.ErrorsByStatus(),
            ServerDelta.Between(before.Body!, after.Body!),
            allocated, freed, allocated == freed);
    }

    private static async Task ReportProgress(Recorder recorder, Stopwatch watch, TextWriter progress, CancellationToken ct)
    {
        long last = 0;
        var lastTime = TimeSpan.Zero;
        while (!ct.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(TimeSpan.FromSeconds(1), ct);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            var now = watch.Elapsed;
            var requests = recorder.Requests;
            var rate = (requests - last) / (now - lastTime).TotalSeconds;
            progress.Write(FormattableString.Invariant($"\r[{now.TotalSeconds,5:F0}s] {requests,9} requests  {rate,8:F0} req/s  {recorder.Errors} errors   "));
            (last, lastTime) = (requests, now);
        }
    }
}

/// <summary>The run's report: rates and latencies per operation, errors, the server's view, and the leak check.</summary>
public sealed record LoadReport(
    string Workload,
    string Strategy,
    string Zone,
    int Concurrency,
    double Seconds,
    long Requests,
    double RequestsPerSecond,
    IReadOnlyList<OperationStats> Operations,
    IReadOnlyDictionary<string, long> ErrorsByStatus,
    ServerDelta Server,
    long PagesAllocated,
    long PagesFreed,
    bool EveryPageFreed);

/// <summary>What the server's /stats say happened during the run, summed over zones.</summary>
public sealed record ServerDelta(long PagesAllocated, long PagesFreed, long AllocatedPagesChange, long ZoneLockAcquisitions, long ZoneLockContended, long ZoneLockWaitNs, long PcpDrains)
{
    public static ServerDelta Between(JsonNode before, JsonNode after)
    {
        long Sum(JsonNode stats, Func<JsonNode, long> pick) => stats["zones"]!.AsArray().Sum(z => pick(z!));
        long Delta(Func<JsonNode, long> pick) => Sum(after, pick) - Sum(before, pick);
        // The zone->lock entry of the zone's lock list, found by its name ("Normal zone->lock").
        static long Lock(JsonNode zone, string field) => zone["locks"]!.AsArray()
            .First(l => l!["name"]!.GetValue<string>().EndsWith(" zone->lock", StringComparison.Ordinal))![field]!.GetValue<long>();
        return new ServerDelta(
            Delta(z => z["vmstat"]!["pgalloc"]!.GetValue<long>()),
            Delta(z => z["vmstat"]!["pgfree"]!.GetValue<long>()),
            Delta(z => z["allocatedPages"]!.GetValue<long>()),
            Delta(z => Lock(z, "acquisitions")),
            Delta(z => Lock(z, "contended")),
            Delta(z => Lock(z, "waitNs")),
            Delta(z => z["vmstat"]!["pcp_drain"]!.GetValue<long>()));
    }
}
