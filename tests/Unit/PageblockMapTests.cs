using PageAlloc.Domain.Model;

namespace PageAlloc.Tests.Unit;

/// <summary>Zone.PageblockMap(): a picture by pageblock that adds up to the zone's own counters.</summary>
public class PageblockMapTests
{
    [Fact]
    public void AtBoot_EveryPageblockIsMovableAndFree()
    {
        var machine = TestMachines.SingleZone(1 << 20, 1 << 14);

        var map = machine.Normal().PageblockMap();

        Assert.Equal(32, map.Count);
        Assert.All(map.MigrateTypes, t => Assert.Equal((byte)MigrateType.Movable, t));
        Assert.All(map.FreePages, f => Assert.Equal(512, f));
    }

    [Fact]
    public void AfterAWorkload_ThePictureAddsUpToTheCounters()
    {
        var machine = TestMachines.SingleZone(1 << 20, 1 << 14, cpus: 2);
        var random = new Random(7);
        var live = new List<PageAlloc.Domain.Allocator.AllocatedBlock>();
        for (var i = 0; i < 400; i++)
        {
            if (live.Count > 0 && random.Next(3) == 0)
            {
                var b = live[random.Next(live.Count)];
                live.Remove(b);
                Assert.True(machine.Normal().FreePages(b.Pfn, b.Order, random.Next(2)).IsSuccess);
            }
            else
            {
                var gfp = random.Next(3) switch { 0 => "GFP_KERNEL", 1 => "GFP_HIGHUSER_MOVABLE", _ => "GFP_KERNEL|__GFP_COMP" };
                var result = machine.AllocPages(machine.Normal(), random.Next(6), Gfp.TryParse(gfp, out var f, out _) ? f : 0, random.Next(2));
                if (result.IsSuccess)
                {
                    live.Add(result.Value);
                }
            }
        }
        var poisoned = live.First(b => b.Order == 0 && !b.Compound);
        Assert.True(machine.Normal().SetHwPoison(poisoned.Pfn).IsSuccess);

        var map = machine.Normal().PageblockMap();
        var stats = machine.Normal().Stats();

        Assert.Equal(stats.FreePages, map.FreePages.Sum());
        Assert.Equal(stats.PcpPages, map.PcpPages.Sum());
        Assert.Equal(1, map.HwPoisonPages.Sum());
        for (var mt = 0; mt < MigrateTypes.Count; mt++)
        {
            Assert.Equal(stats.PageblocksByType[mt], map.MigrateTypes.Count(t => t == mt));
        }
        Assert.All(map.FreePages.Zip(map.PcpPages), p => Assert.InRange(p.First + p.Second, 0, 512));
    }
}
