using System.Globalization;
using PageAlloc.Domain.Model;
using PageAlloc.Domain.Testing;
using PageAlloc.Domain.Tracing;

namespace PageAlloc.Bench;

/// <summary>
/// `trace`: what the tracepoints cost. The seed loop runs alternately with nobody listening and with
/// one listener on every event (its buffer drained by another thread, as GET /events drains it),
/// five rounds each; the report gives both medians, the events per iteration, and the cost per event.
/// </summary>
internal static class TraceCostCommand
{
    private const int Rounds = 5;

    public static int Run(Options options)
    {
        var strategy = options.Strategy ?? FreeStrategy.Chunked;
        var config = MachineConfig.Default();
        WarmUp.Run(() => PageAllocHighOrderTest.Run(config, "Normal", strategy, 2000, options.Order));
        WarmUp.Run(() => Traced(config, strategy, 2000, options.Order));

        var off = new List<double>();
        var on = new List<double>();
        long events = 0, lost = 0;
        for (var round = 0; round < Rounds; round++)
        {
            off.Add(PageAllocHighOrderTest.Run(config, "Normal", strategy, options.Iterations, options.Order).Value.NsPerIteration);
            var (ns, e, l) = Traced(config, strategy, options.Iterations, options.Order);
            on.Add(ns);
            (events, lost) = (e, l);
        }
        double Median(List<double> xs) => xs.Order().ElementAt(xs.Count / 2);
        var perIteration = (double)(events + lost) / options.Iterations;
        var c = CultureInfo.InvariantCulture;
        Console.WriteLine(string.Create(c, $"seed loop, {FreeStrategies.Name(strategy)}, {options.Iterations} iterations x {Rounds} rounds, alternating"));
        Console.WriteLine(string.Create(c, $"nobody listening:            {Median(off),9:F1} ns/iteration (rounds {string.Join(", ", off.Select(x => x.ToString("F1", c)))})"));
        Console.WriteLine(string.Create(c, $"one listener on every event: {Median(on),9:F1} ns/iteration (rounds {string.Join(", ", on.Select(x => x.ToString("F1", c)))})"));
        Console.WriteLine(string.Create(c, $"events per iteration {perIteration:F1} (last round: {events} read, {lost} lost); cost per event {(Median(on) - Median(off)) / perIteration:F1} ns"));
        return 0;
    }

    /// <summary>The loop with a listener on every event, drained by another thread; returns ns/iteration, events read and lost.</summary>
    private static (double Ns, long Events, long Lost) Traced(MachineConfig config, FreeStrategy strategy, int iterations, int order)
    {
        var tracepoints = new Tracepoints();
        using var listener = tracepoints.Listen(new TraceFilter(TraceFilter.AllTypes), 1 << 16);
        long read = 0;
        var reader = Task.Run(async () =>
        {
            while (await listener.Events.WaitToReadAsync())
            {
                while (listener.Events.TryRead(out _))
                {
                    read++;
                }
            }
        });
        var result = PageAllocHighOrderTest.Run(config, "Normal", strategy, iterations, order, tracepoints).Value;
        var lost = listener.TakeLost();
        listener.Dispose();
        reader.Wait();
        return (result.NsPerIteration, read, lost);
    }
}
