using PageAlloc.Domain.Allocator;
using PageAlloc.Domain.Model;

namespace PageAlloc.Tests.Unit;

public class ConcurrencyTests
{
    [Fact]
    public async Task ManyThreadsOnOneZone_KeepEveryInvariant_AndCoalesceBackToBoot()
    {
        var machine = TestMachines.Small(cpus: 4);
        var zone = machine.Normal();
        var boot = machine.BuddyInfo();

        var workers = Enumerable.Range(0, 8).Select(t => Task.Run(() =>
        {
            var random = new Random(t);
            var cpu = t % 4;
            var mine = new List<(Zone Zone, long Pfn, int Order)>();
            for (var i = 0; i < 3000; i++)
            {
                var op = random.Next(10);
                if (op < 5 || mine.Count == 0)
                {
                    var order = random.Next(4) == 0 ? 9 : random.Next(4);
                    var gfp = random.Next(2) == 0 ? Gfp.Kernel : Gfp.HighUserMovable;
                    var result = machine.AllocPages(zone, order, gfp, cpu);
                    if (result.IsSuccess)
                    {
                        mine.Add((result.Value.Zone, result.Value.Pfn, order));
                    }
                    continue;
                }
                var k = random.Next(mine.Count);
                var (z, pfn, ord) = mine[k];
                mine.RemoveAt(k);
                if (op < 7 && ord > 0)
                {
                    Assert.True(z.SplitPage(pfn, ord).IsSuccess);
                    var strategy = (FreeStrategy)random.Next(3);
                    Assert.Equal(1L << ord, z.FreeContigRange(pfn, 1L << ord, strategy, cpu).Value.Freed);
                }
                else if (op == 9)
                {
                    z.DrainPages(cpu);
                    var freed = z.FreePages(pfn, ord, cpu);
                    Assert.True(freed.IsSuccess, freed.Error?.ToString());
                }
                else
                {
                    var freed = z.FreePages(pfn, ord, cpu);
                    Assert.True(freed.IsSuccess, freed.Error?.ToString());
                }
            }
            foreach (var (z, pfn, ord) in mine)
            {
                Assert.True(z.FreePages(pfn, ord, cpu).IsSuccess);
            }
        }, TestContext.Current.CancellationToken)).ToArray();
        await Task.WhenAll(workers);

        machine.AssertConsistent();
        Assert.All(machine.Zones, z => Assert.Equal(0, z.Stats().AllocatedPages));
        Assert.All(machine.Zones, z => z.DrainPages(null));
        Assert.Equal(boot, machine.BuddyInfo());
    }

    [Fact]
    public async Task RacingDoubleFrees_OnlyOneSucceeds_StateStaysConsistent()
    {
        var machine = TestMachines.Small(cpus: 4);
        var zone = machine.Normal();
        for (var round = 0; round < 200; round++)
        {
            var block = machine.AllocPages(zone, 3, Gfp.Kernel, 0).Value;
            zone.SplitPage(block.Pfn, 3);
            var racers = Enumerable.Range(0, 4)
                .Select(c => Task.Run(() => zone.FreeContigRange(block.Pfn, 8, FreeStrategy.Chunked, c), TestContext.Current.CancellationToken))
                .ToArray();
            var results = await Task.WhenAll(racers);
            Assert.Equal(8, results.Where(r => r.IsSuccess).Sum(r => r.Value.Freed));
        }
        machine.AssertConsistent();
        Assert.Equal(0, zone.Stats().AllocatedPages);
    }
}
