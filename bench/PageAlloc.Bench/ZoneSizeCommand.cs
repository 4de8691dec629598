using System.Diagnostics;
using System.Globalization;
using PageAlloc.Domain.Allocator;
using PageAlloc.Domain.Model;

namespace PageAlloc.Bench;

/// <summary>
/// `zonesize`: does cost grow with zone size? Boots a 1 GiB and a 1 TiB Normal zone, then times
/// alloc + free pairs of several orders on each, in alternating rounds, and prints the ratios.
/// What it needs (<see cref="Needs"/>) is worked out from the two zones' pages: their page state is
/// committed whole, but boot touches only part of it.
/// </summary>
internal static class ZoneSizeCommand
{
    private const long SmallPages = 1L << 18;
    private const long BigPages = 1L << 28;

    /// <summary>
    /// The page state a free zone has resident after boot: its flags and order bytes (one each a
    /// page). Boot writes them on the head of every order-10 block only, one byte in 1024, but that
    /// touches every 4 KiB page of both arrays; the refcounts and list links stay untouched until
    /// pages are used, and this benchmark uses few.
    /// </summary>
    private const int BootResidentBytesPerPage = 2;

    /// <summary>The page state the two zones commit (MachineConfig.StateBytes), in MiB.</summary>
    internal static long CommittedMiB => (OneZoneConfig(SmallPages).StateBytes() + OneZoneConfig(BigPages).StateBytes()) >> 20;

    /// <summary>The part of it boot makes resident, in MiB (the runtime adds its own few tens).</summary>
    internal static long ResidentMiB => (SmallPages + BigPages) * BootResidentBytesPerPage >> 20;

    /// <summary>What the command needs, for its help.</summary>
    internal static string Needs => string.Create(CultureInfo.InvariantCulture,
        $"about {ResidentMiB} MiB of memory for page state ({BootResidentBytesPerPage} bytes a page are touched) plus the runtime's; "
        + $"it commits the whole page state, {CommittedMiB} MiB, which a GC heap limit counts "
        + $"(DOTNET_GCHeapHardLimit, or by default 75% of a container's memory limit)");

    public static int Run(Options options)
    {
        var c = CultureInfo.InvariantCulture;
        var watch = Stopwatch.StartNew();
        var small = OneZone(SmallPages);
        var smallBoot = watch.ElapsedMilliseconds;
        watch.Restart();
        var big = OneZone(BigPages);
        var bigBoot = watch.ElapsedMilliseconds;
        Console.WriteLine(string.Create(c, $"boot: 1 GiB zone {smallBoot} ms, 1 TiB zone {bigBoot} ms; working set {Environment.WorkingSet >> 20} MiB "
            + $"(page state touched: {ResidentMiB} MiB), GC heap {GC.GetTotalMemory(forceFullCollection: false) >> 20} MiB (page state: {CommittedMiB} MiB)"));
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
        using var self = Process.GetCurrentProcess();
        Console.WriteLine(string.Create(c, $"peak working set {self.PeakWorkingSet64 >> 20} MiB"));
        return 0;
    }

    private static MachineConfig OneZoneConfig(long pages) =>
        MachineConfig.SingleNode(4, null, new ZoneConfig { Name = "Normal", StartPfn = 1L << 20, Pages = pages });

    private static Machine OneZone(long pages) => new(OneZoneConfig(pages));

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
