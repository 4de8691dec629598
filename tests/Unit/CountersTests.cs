using PageAlloc.Domain.Model;

namespace PageAlloc.Tests.Unit;

/// <summary>Zone.Counters(), read without locks for metrics, says what Stats() says once the zone is at rest.</summary>
public class CountersTests
{
    [Fact]
    public void AtRest_CountersAgreeWithTheLockedSnapshot()
    {
        var machine = TestMachines.Small(cpus: 2);
        var blocks = Enumerable.Range(0, 40).Select(i => machine.Alloc("Normal", i % 4, i % 2 == 0 ? "GFP_KERNEL" : "GFP_HIGHUSER_MOVABLE", cpu: i % 2)).ToList();
        foreach (var b in blocks.Where((_, i) => i % 3 == 0))
        {
            Assert.True(b.Zone.FreePages(b.Pfn, b.Order, 1).IsSuccess);
        }

        var zone = machine.Normal();
        var counters = zone.Counters();
        var stats = zone.Stats();

        Assert.Equal(stats.Events, counters.Events);
        Assert.Equal(stats.FreePages, counters.FreePages);
        Assert.Equal(stats.PcpPages, counters.PcpPagesByCpu.Sum());
        Assert.Equal(stats.NrFreeByType.Select(a => a.ToArray()), counters.FreeBlocksByType);
        Assert.Equal(stats.Locks[0].Acquisitions - 1, counters.ZoneLock.Acquisitions); // Stats() took the zone lock once more
    }

    [Fact]
    public void AllocsAndFreesByOrder_CountBlocks_AndAddUpToThePageCounters()
    {
        var machine = TestMachines.SingleZone(1 << 20, 1 << 14, cpus: 1);
        var before = machine.Normal().Counters();
        var a = machine.Alloc("Normal", 3);
        var b = machine.Alloc("Normal", 3);
        var c = machine.Alloc("Normal", 10);
        Assert.True(machine.Normal().FreePages(a.Pfn, 3, 0).IsSuccess);
        Assert.True(machine.Normal().FreePages(c.Pfn, 10, 0).IsSuccess);

        var after = machine.Normal().Counters();
        long Delta(long[] x, long[] y, int order) => y[order] - x[order];
        Assert.Equal(2, Delta(before.AllocsByOrder, after.AllocsByOrder, 3));
        Assert.Equal(1, Delta(before.AllocsByOrder, after.AllocsByOrder, 10));
        Assert.Equal(1, Delta(before.FreesByOrder, after.FreesByOrder, 3));
        Assert.Equal(1, Delta(before.FreesByOrder, after.FreesByOrder, 10));
        Assert.Equal(after.Event(VmEvent.PgAlloc) - before.Event(VmEvent.PgAlloc),
            Enumerable.Range(0, 11).Sum(o => Delta(before.AllocsByOrder, after.AllocsByOrder, o) << o));
        Assert.Equal(after.Event(VmEvent.PgFree) - before.Event(VmEvent.PgFree),
            Enumerable.Range(0, 11).Sum(o => Delta(before.FreesByOrder, after.FreesByOrder, o) << o));
        _ = b;
    }
}
