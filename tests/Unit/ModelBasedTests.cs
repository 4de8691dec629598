using CsCheck;
using PageAlloc.Domain.Allocator;
using PageAlloc.Domain.Model;

namespace PageAlloc.Tests.Unit;

/// <summary>
/// Random sequences of alloc / split / free / get / put / drain / free_contig_range /
/// free_pages_bulk against a reference model that only remembers what each caller holds. After
/// every step: pages are conserved, no two live allocations overlap, and the invariant checker is
/// clean. Freeing everything and draining must give back the boot buddyinfo.
/// </summary>
public class ModelBasedTests
{
    /// <summary>What the model knows of one live allocation: its head, order, and references.</summary>
    private sealed record Held(Zone Zone, long Pfn, int Order, bool Compound, bool Split)
    {
        public int Refs { get; set; } = 1;
    }

    private static readonly string[] GfpChoices =
        ["GFP_KERNEL", "GFP_HIGHUSER_MOVABLE", "GFP_KERNEL|__GFP_RECLAIMABLE", "GFP_ATOMIC", "GFP_KERNEL|__GFP_COMP", "GFP_NOWAIT"];

    [Fact]
    public void RandomOperations_ConservePages_NeverOverlap_AndCoalesceBackToBoot()
    {
        Gen.Int[0, int.MaxValue].Array[1, 120].Sample(RunSequence, iter: 60, threads: 1);
    }

    private static void RunSequence(int[] steps)
    {
        var machine = TestMachines.Small(cpus: 2);
        var boot = machine.BuddyInfo();
        var held = new List<Held>();

        foreach (var step in steps)
        {
            var choice = step % 9;
            var pick = step / 9;
            var cpu = pick & 1;
            if (held.Count == 0 || choice <= 1)
            {
                var zone = machine.Zones[pick % machine.Zones.Count];
                var order = (pick / 7) % 11 % (choice == 0 ? 11 : 4);
                Assert.True(Gfp.TryParse(GfpChoices[(pick / 97) % GfpChoices.Length], out var gfp, out _));
                var result = machine.AllocPages(zone, order, gfp, cpu);
                if (result.IsSuccess)
                {
                    var b = result.Value;
                    held.Add(new Held(b.Zone, b.Pfn, b.Order, b.Compound, Split: false));
                }
                else
                {
                    Assert.Equal(PageErrorKind.OutOfMemory, result.Error!.Kind);
                }
            }
            else
            {
                var h = held[pick % held.Count];
                switch (choice)
                {
                    case 2 when !h.Compound && h.Order > 0 && h.Refs == 1:
                        Assert.True(h.Zone.SplitPage(h.Pfn, h.Order).IsSuccess);
                        held.Remove(h);
                        for (var i = 0; i < 1 << h.Order; i++)
                        {
                            held.Add(new Held(h.Zone, h.Pfn + i, 0, false, Split: true));
                        }
                        break;
                    case 3:
                        Assert.Equal(h.Refs + 1, h.Zone.GetPage(h.Pfn).Value.Refcount);
                        h.Refs++;
                        break;
                    case 4 when h.Compound || h.Order == 0 || h.Refs > 1:
                        Assert.Equal(h.Refs - 1, h.Zone.PutPage(h.Pfn, cpu).Value.Refcount);
                        if (--h.Refs == 0)
                        {
                            held.Remove(h);
                        }
                        break;
                    case 5:
                        FreeRangeOfSplitPages(held, h, FreeStrategies.All[pick % FreeStrategies.All.Count].Strategy, cpu);
                        break;
                    case 6:
                        Assert.True(h.Zone.DrainPages(pick % 3 == 0 ? null : cpu).IsSuccess);
                        break;
                    default:
                        FreeHeld(held, h, cpu);
                        break;
                }
            }
            AssertConservedAndDisjoint(machine, held);
        }

        while (held.Count > 0)
        {
            FreeHeld(held, held[0], 0);
        }
        foreach (var zone in machine.Zones)
        {
            zone.DrainPages(null);
        }
        machine.AssertConsistent();
        Assert.Equal(boot, machine.BuddyInfo());
    }

    /// <summary>__free_pages() at the allocation's order: one reference dropped.</summary>
    private static void FreeHeld(List<Held> held, Held h, int cpu)
    {
        var result = h.Zone.FreePages(h.Pfn, h.Order, cpu).Value;
        h.Refs--;
        Assert.Equal(h.Refs, result.Refcount);
        if (h.Refs == 0)
        {
            held.Remove(h);
        }
        else if (!h.Compound && h.Order > 0)
        {
            // ___free_pages(): the tails went back; the holder keeps the head page alone.
            held.Remove(h);
            held.Add(new Held(h.Zone, h.Pfn, 0, false, h.Split) { Refs = h.Refs });
        }
    }

    /// <summary>free_contig_range over the longest run of held split pages that starts at h.</summary>
    private static void FreeRangeOfSplitPages(List<Held> held, Held h, FreeStrategy strategy, int cpu)
    {
        if (!h.Split)
        {
            return;
        }
        var run = new List<Held> { h };
        while (held.Find(x => x.Split && x.Zone == h.Zone && x.Pfn == run[^1].Pfn + 1) is { } next)
        {
            run.Add(next);
        }
        var result = strategy == FreeStrategy.Chunked && run.Count > 2
            ? h.Zone.FreePagesBulk(run.Select(r => r.Pfn).Reverse().ToList(), strategy, cpu)
            : h.Zone.FreeContigRange(h.Pfn, run.Count, strategy, cpu);
        Assert.True(result.IsSuccess, result.Error?.ToString());
        Assert.Equal(run.Count(r => r.Refs == 1), result.Value.Freed);
        Assert.Equal(run.Count(r => r.Refs > 1), result.Value.NotFreed);
        foreach (var r in run)
        {
            if (--r.Refs == 0)
            {
                held.Remove(r);
            }
        }
    }

    private static void AssertConservedAndDisjoint(Machine machine, List<Held> held)
    {
        foreach (var zone in machine.Zones)
        {
            var stats = zone.Stats();
            var mine = held.Where(h => h.Zone == zone).OrderBy(h => h.Pfn).ToList();
            Assert.Equal(mine.Sum(h => 1L << h.Order), stats.AllocatedPages);
            Assert.Equal(stats.ManagedPages, stats.FreePages + stats.PcpPages + stats.AllocatedPages + stats.HwPoisonLeakedPages);
            for (var i = 1; i < mine.Count; i++)
            {
                Assert.True(mine[i - 1].Pfn + (1L << mine[i - 1].Order) <= mine[i].Pfn,
                    $"allocations at {mine[i - 1].Pfn:x} and {mine[i].Pfn:x} overlap");
            }
        }
        machine.AssertConsistent();
    }
}
