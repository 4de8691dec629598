using System.Diagnostics;
using System.Globalization;
using PageAlloc.Domain.Allocator;
using PageAlloc.Domain.Model;

namespace PageAlloc.Bench;

/// <summary>
/// `zonesize`: does cost grow with zone size? Boots a 1 GiB and a 1 TiB Normal zone, then times
/// alloc + free pairs of several orders on each, in alternating rounds, and prints the ratios.
/// The 1 TiB zone needs about 3 GB of memory.
/// </summary>
internal static class ZoneSizeCommand
{
    public static int Run(Options options)
    {
        var c = CultureInfo.InvariantCulture;
        var watch = Stopwatch.StartNew();
        var small = OneZone(1L << 18);
        var smallBoot = watch.ElapsedMilliseconds;
        watch.Restart();
        var big = OneZone(1L << 28);
        var bigBoot = watch.ElapsedMilliseconds;
        Console.WriteLine(string.Create(c, $"boot: 1 GiB zone {smallBoot} ms, 1 TiB zone {bigBoot} ms; working set {Environment.WorkingSet >> 20} MiB"));
        Console.WriteLine("order   1 GiB ns/pair   1 TiB ns/pair   1 TiB / 1 GiB");
        var pairs = Math.Max(1000, options.Iterations * 2);
        foreach (var order in new[] { 0, 3, 9, 10 })
        {
            WarmUp.Run(() => AllocFree(small, 20000, order));
            WarmUp.Run(() => AllocFree(big, 20000, order));
            double s = 0, b = 0;
            for (var round = 0; round < 3; round++)
            {
                s += AllocFree(small, pairs, order);
                b += AllocFree(big, pairs, order);
            }
            Console.WriteLine(string.Create(c, $"{order,5} {s / 3,15:F1} {b / 3,15:F1} {b / s,15:F2}"));
        }
        return 0;
    }

    private static Machine OneZone(long pages) =>
        new(MachineConfig.SingleNode(4, null, new ZoneConfig { Name = "Normal", StartPfn = 1L << 20, Pages = pages }));

    private static double AllocFree(Machine machine, int pairs, int order)
    {
        var zone = machine.Zones[0];
        var watch = Stopwatch.StartNew();
        for (var i = 0; i < pairs; i++)
        {
            var block = machine.AllocPages(zone, order, Gfp.Kernel, 0).Value;
            zone.FreePages(block.Pfn, order, 0);
        }
        return watch.Elapsed.TotalNanoseconds / pairs;
    }
}
