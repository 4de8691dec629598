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
        var machines = options.Machines is { } n ? await CreateMachines(calls, n, progress, abort) : [options.Machine];
        try
        {
            return await RunOn(machines, calls, options, progress, stop, abort);
        }
        finally
        {
            if (options.Machines is not null)
            {
                await DeleteMachines(calls, machines, progress);
            }
        }
    }

    private static async Task<LoadReport> RunOn(List<string> machines, TimedCalls calls, LoadOptions options, TextWriter? progress, CancellationToken stop, CancellationToken abort)
    {
        var before = await Stats(calls, machines, abort);
        var counters = new RunCounters();
        var workers = Enumerable.Range(0, options.Concurrency).Select(i => new Worker(calls, options, new Recorder(counters), i, machines[i % machines.Count])).ToArray();
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
            await OpenModel(workers, rate, options.Requests is null ? options.Duration : null, counters, BudgetLeft, abort);
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
        var after = await Stats(calls, machines, abort);
        var perMachine = options.Machines is null ? null : machines.Select(m =>
        {
            var mine = workers.Where(w => w.Machine == m).Select(w => w.Recorder).ToList();
            return new MachineReport(m, mine.Sum(r => r.Requests), mine.Sum(r => r.Failed), mine.Sum(r => r.AllocatedPages), mine.Sum(r => r.FreedPages),
                ServerDelta.Between(before[m], after[m]));
        }).ToList();
        return LoadReport.From(options, workers.Select(w => w.Recorder).ToList(), counters, elapsed,
            interrupted: stop.IsCancellationRequested, ServerDelta.Sum(machines.Select(m => ServerDelta.Between(before[m], after[m]))), perMachine);
    }

    /// <summary>Every machine's GET .../stats; the first one failing means the service (or the machine) is not there.</summary>
    private static async Task<Dictionary<string, MachineStatsResponse?>> Stats(TimedCalls calls, List<string> machines, CancellationToken abort)
    {
        var stats = new Dictionary<string, MachineStatsResponse?>(StringComparer.Ordinal);
        foreach (var machine in machines)
        {
            var result = await calls.Run((c, t) => c.GetStatsAsync(machine, t), abort);
            if (result.Value is null && stats.Count == 0)
            {
                throw new InvalidOperationException($"GET /machines/{machine}/stats failed ({result.Failure}): is the service running, and does it have machine '{machine}'?");
            }
            stats[machine] = result.Value;
        }
        return stats;
    }

    /// <summary>N private machines of the default machine's shape, named after this run; any made before a failure are deleted.</summary>
    private static async Task<List<string>> CreateMachines(TimedCalls calls, int count, TextWriter? progress, CancellationToken abort)
    {
        var run = Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(3));
        var made = new List<string>();
        for (var i = 0; i < count; i++)
        {
            var name = $"loadgen-{run}-{i}";
            var created = await calls.Run((c, t) => c.CreateMachineAsync(name: null, pinned: null, new CreateMachineRequest { Name = name }, t), abort);
            if (created.Value is null)
            {
                await DeleteMachines(calls, made, progress);
                throw new InvalidOperationException($"POST /machines for machine {i + 1} of {count} failed ({created.Failure}); the {made.Count} made were deleted.");
            }
            made.Add(created.Value.Name);
        }
        progress?.WriteLine($"created {count} machines: {string.Join(", ", made)}");
        return made;
    }

    /// <summary>Deletes the run's machines, whatever stopped it (not cancellable: a Ctrl+C must not leave them behind).</summary>
    private static async Task DeleteMachines(TimedCalls calls, List<string> machines, TextWriter? progress)
    {
        var failed = 0;
        foreach (var machine in machines)
        {
            var deleted = await calls.Run(async (c, t) =>
            {
                await c.DeleteMachineAsync(machine, t);
                return true;
            }, CancellationToken.None);
            failed += deleted.IsSuccess ? 0 : 1;
        }
        if (machines.Count > 0)
        {
            progress?.WriteLine(failed == 0 ? $"deleted the {machines.Count} machines" : $"could not delete {failed} of the {machines.Count} machines");
        }
    }

    /// <summary>
    /// A step due every 1/rate s, run on an idle worker; dropped (and counted) when none is idle. With
    /// a <paramref name="duration"/>, the steps due within it and no more: the run's timer alone may
    /// fire late on a loaded machine, and the steps due meanwhile would all start at once when the loop
    /// catches up (163 steps of a 1 s run at 100/s were seen).
    /// </summary>
    private static async Task OpenModel(Worker[] workers, double rate, TimeSpan? duration, RunCounters counters, Func<bool> budgetLeft, CancellationToken abort)
    {
        var idle = Channel.CreateUnbounded<Worker>();
        foreach (var w in workers)
        {
            idle.Writer.TryWrite(w);
        }
        var running = new List<Task>();
        var interval = TimeSpan.FromSeconds(1 / rate);
        var clock = Stopwatch.StartNew();
        for (long due = 0; (duration is not { } d || interval * due < d) && budgetLeft() && !abort.IsCancellationRequested; due++)
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
