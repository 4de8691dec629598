using System.Diagnostics;
using System.Threading.Channels;
using PageAlloc.Client;

namespace PageAlloc.LoadGen;

/// <summary>
/// Runs a workload until its duration or request budget is spent or it is told to stop, then frees
/// what the workers still hold and compares the server's /stats before and after.
/// <list type="bullet">
/// <item>Closed model (default): each of N workers runs steps back to back.</item>
/// <item>Open model (--rate): a step is due every 1/rate seconds whatever the latency; it runs on an
/// idle worker, and is counted as dropped when all N are busy (k6's constant-arrival-rate).</item>
/// </list>
/// Two tokens: <c>stop</c> (the duration, or a first Ctrl+C) ends the starting of steps, while steps
/// in flight and the cleanup run on <c>abort</c> (a second Ctrl+C), so a stopped run still frees its pages.
/// </summary>
public static class LoadRunner
{
    public static async Task<LoadReport> RunAsync(TimedCalls calls, LoadOptions options, TextWriter? progress, CancellationToken stop, CancellationToken abort = default)
    {
        var before = await calls.Run((c, t) => c.GetStatsAsync(t), abort);
        if (before.Value is null)
        {
            throw new InvalidOperationException($"GET /stats failed ({before.Failure}): is the service running at {options.Url}?");
        }
        var counters = new RunCounters();
        var workers = Enumerable.Range(0, options.Concurrency).Select(i => new Worker(calls, options, new Recorder(counters), i)).ToArray();
        using var timed = CancellationTokenSource.CreateLinkedTokenSource(stop);
        if (options.Requests is null)
        {
            timed.CancelAfter(options.Duration);
        }
        bool BudgetLeft() => !timed.IsCancellationRequested && (options.Requests is not { } budget || counters.Requests < budget);

        var watch = Stopwatch.StartNew();
        using var progressStop = new CancellationTokenSource();
        var progressTask = progress is null ? Task.CompletedTask : Progress.Report(counters, watch, progress, progressStop.Token);
        if (options.Rate is { } rate)
        {
            await OpenModel(workers, rate, counters, BudgetLeft, abort);
        }
        else
        {
            await Task.WhenAll(workers.Select(async w =>
            {
                while (BudgetLeft() && !abort.IsCancellationRequested)
                {
                    await w.Step(abort);
                }
            }));
        }
        var elapsed = watch.Elapsed;
        await progressStop.CancelAsync();
        await progressTask;

        counters.Timing = false;
        await Task.WhenAll(workers.Select(w => w.Drain(abort)));
        var after = await calls.Run((c, t) => c.GetStatsAsync(t), abort);
        return LoadReport.From(options, workers.Select(w => w.Recorder).ToList(), counters, elapsed,
            interrupted: stop.IsCancellationRequested, ServerDelta.Between(before.Value, after.Value));
    }

    /// <summary>A step due every 1/rate s, run on an idle worker; dropped (and counted) when none is idle.</summary>
    private static async Task OpenModel(Worker[] workers, double rate, RunCounters counters, Func<bool> budgetLeft, CancellationToken abort)
    {
        var idle = Channel.CreateUnbounded<Worker>();
        foreach (var w in workers)
        {
            idle.Writer.TryWrite(w);
        }
        var running = new List<Task>();
        var interval = TimeSpan.FromSeconds(1 / rate);
        var clock = Stopwatch.StartNew();
        for (long due = 0; budgetLeft() && !abort.IsCancellationRequested; due++)
        {
            var wait = interval * due - clock.Elapsed;
            if (wait > TimeSpan.Zero)
            {
                await Task.Delay(wait, CancellationToken.None);
            }
            if (!idle.Reader.TryRead(out var worker))
            {
                counters.CountDropped();
                continue;
            }
            running.Add(Task.Run(async () =>
            {
                await worker.Step(abort);
                idle.Writer.TryWrite(worker);
            }, CancellationToken.None));
            running.RemoveAll(t => t.IsCompleted);
        }
        await Task.WhenAll(running);
    }
}

/// <summary>
/// The progress line on stderr: rewritten in place (\r) on a terminal once a second, and a plain line
/// every 5 seconds when stderr is redirected to a file or a pipe, so logs stay readable.
/// </summary>
internal static class Progress
{
    public static async Task Report(RunCounters counters, Stopwatch watch, TextWriter progress, CancellationToken ct)
    {
        var terminal = !Console.IsErrorRedirected;
        var period = TimeSpan.FromSeconds(terminal ? 1 : 5);
        long last = 0;
        var lastTime = TimeSpan.Zero;
        try
        {
            while (true)
            {
                await Task.Delay(period, ct);
                var now = watch.Elapsed;
                var requests = counters.Requests;
                var line = FormattableString.Invariant(
                    $"[{now.TotalSeconds,5:F0}s] {requests,9} requests  {(requests - last) / (now - lastTime).TotalSeconds,8:F0} req/s  {counters.Errors} errors  {counters.Dropped} dropped");
                progress.Write(terminal ? "\r" + line + "   " : line + "\n");
                (last, lastTime) = (requests, now);
            }
        }
        catch (OperationCanceledException)
        {
            if (terminal && last > 0)
            {
                progress.WriteLine();
            }
        }
    }
}
