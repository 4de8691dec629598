using PageAlloc.Domain.Allocator;
using PageAlloc.Domain.Model;
using PageAlloc.Domain.Proc;

namespace PageAlloc.Tests.Unit;

/// <summary>Small machines for tests, and helpers to read their state.</summary>
internal static class TestMachines
{
    /// <summary>One Normal zone of the given size at startPfn, no watermarks (min_free_kbytes 0).</summary>
    public static Machine SingleZone(long startPfn, long pages, int cpus = 1) =>
        new(MachineConfig.SingleNode(cpus, 0, new ZoneConfig { Name = "Normal", StartPfn = startPfn, Pages = pages }));

    /// <summary>A small DMA32 + Normal machine, so fallbacks between zones and ALLOC_NOFRAGMENT apply.</summary>
    public static Machine Small(int cpus = 2, long? minFreeKbytes = 0) => new(MachineConfig.SingleNode(
        cpus,
        minFreeKbytes,
        new ZoneConfig { Name = "DMA32", StartPfn = 4096, Pages = 4096 },
        new ZoneConfig { Name = "Normal", StartPfn = 16384, Pages = 8192 }));

    public static Zone Normal(this Machine m) => m.FindZone("Normal")!;

    public static AllocatedBlock Alloc(this Machine m, string zone, int order, string gfp = "GFP_KERNEL", int cpu = 0)
    {
        Assert.True(Gfp.TryParse(gfp, out var flags, out _));
        var result = m.AllocPages(m.FindZone(zone)!, order, flags, cpu);
        Assert.True(result.IsSuccess, result.Error?.ToString());
        return result.Value;
    }

    public static string BuddyInfo(this Machine m) => ProcFs.BuddyInfo(m.Stats());

    /// <summary>Everything a refused call must leave unchanged: counters, lists' sizes, /proc texts.</summary>
    public static string Fingerprint(this Machine m)
    {
        var stats = m.Stats();
        return ProcFs.BuddyInfo(stats) + ProcFs.PageTypeInfo(stats) + ProcFs.ZoneInfo(stats, m.Cpus, m.Vmscan) + ProcFs.VmStat(stats, m.Vmscan)
            + string.Join(",", stats.Select(s => $"{s.AllocatedPages}/{s.PcpPages}/{string.Join(":", s.Events)}"));
    }

    public static void AssertConsistent(this Machine m)
    {
        var problems = m.CheckInvariants();
        Assert.True(problems.Count == 0, string.Join("\n", problems));
    }
}
