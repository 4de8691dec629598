using PageAlloc.Domain.Allocator;
using PageAlloc.Domain.Model;

namespace PageAlloc.Tests.Unit;

/// <summary>
/// Memory cgroup charging as __memcg_kmem_charge_page() / __memcg_kmem_uncharge_page() do it, and
/// PageAlloc's rule that a caller acting for one memcg cannot change pages charged to another.
/// </summary>
public class MemcgTests
{
    private static Machine WithMemcgs(long maxA = long.MaxValue, int cpus = 2) => new(new MachineConfig
    {
        Cpus = cpus,
        MinFreeKbytes = 0,
        Nodes = [new NodeConfig { Zones = [new ZoneConfig { Name = "Normal", StartPfn = 0x10000, Pages = 4096 }] }],
        Memcgs = [new MemcgConfig { Name = "a", MaxPages = maxA }, new MemcgConfig { Name = "b" }],
    });

    private static AllocatedBlock Alloc(Machine m, Memcg? memcg, int order, GfpFlags gfp = Gfp.KernelAccount, int cpu = 0)
    {
        var result = m.AllocPages(m.Normal(), order, gfp, cpu, memcg);
        Assert.True(result.IsSuccess, result.Error?.ToString());
        return result.Value;
    }

    [Fact]
    public void AccountedAllocation_IsChargedToItsMemcg_AndUnchargedWhenFreed()
    {
        var m = WithMemcgs();
        var a = m.FindMemcg("a")!;

        var block = Alloc(m, a, 3);
        Assert.Equal(8, a.UsagePages);
        Assert.Same(a, m.Normal().MemcgOf(block.Pfn));

        Assert.True(m.Normal().FreePages(block.Pfn, 3, 0, a).IsSuccess);
        Assert.Equal(0, a.UsagePages);
        m.AssertConsistent();
    }

    [Fact]
    public void AllocationWithoutGfpAccount_IsNotCharged()
    {
        var m = WithMemcgs();
        var a = m.FindMemcg("a")!;

        var block = Alloc(m, a, 2, Gfp.Kernel);

        Assert.Equal(0, a.UsagePages);
        Assert.Null(m.Normal().MemcgOf(block.Pfn));
        m.AssertConsistent();
    }

    [Fact]
    public void ChargePastMemoryMax_FailsTheAllocation_CountsAMaxEvent_AndChangesNothing()
    {
        var m = WithMemcgs(maxA: 8);
        var a = m.FindMemcg("a")!;
        Alloc(m, a, 2);
        var before = m.Fingerprint();

        var refused = m.AllocPages(m.Normal(), 3, Gfp.KernelAccount, 0, a);

        Assert.Equal(PageErrorKind.MemcgMax, refused.Error?.Kind);
        Assert.Equal(4, a.UsagePages);
        Assert.Equal(1, a.MaxEvents);
        Assert.Equal(before, m.Fingerprint());
        Alloc(m, a, 2); // exactly up to memory.max is allowed
        Assert.Equal(8, a.UsagePages);
    }

    [Fact]
    public void EveryCallOnAnotherMemcgsPages_IsRefused_AndChangesNothing()
    {
        var m = WithMemcgs();
        var zone = m.Normal();
        var (a, b) = (m.FindMemcg("a")!, m.FindMemcg("b")!);
        var block = Alloc(m, a, 3);
        var split = Alloc(m, a, 3);
        Assert.True(zone.SplitPage(split.Pfn, 3, a).IsSuccess);
        var before = m.Fingerprint();

        PageError?[] refusals =
        [
            zone.FreePages(block.Pfn, 3, 0, b).Error,
            zone.SplitPage(block.Pfn, 3, b).Error,
            zone.GetPage(block.Pfn, b).Error,
            zone.PutPage(split.Pfn, 0, b).Error,
            zone.SetHwPoison(split.Pfn, b).Error,
            .. Enum.GetValues<FreeStrategy>().Select(s => zone.FreeContigRange(split.Pfn, 8, s, 0, null, b).Error),
            .. Enum.GetValues<FreeStrategy>().Select(s => zone.FreePagesBulk([split.Pfn + 7], s, 0, null, b).Error),
        ];

        Assert.All(refusals, e => Assert.Equal(PageErrorKind.NotOwner, e?.Kind));
        Assert.Contains("charged to a, not to b", refusals[0]!.Detail, StringComparison.Ordinal);
        Assert.Equal(before, m.Fingerprint());
        m.AssertConsistent();
    }

    [Fact]
    public void AnAdministrator_MayFreeAnyPage_AndTheOwnersChargeIsDropped()
    {
        var m = WithMemcgs();
        var a = m.FindMemcg("a")!;
        var block = Alloc(m, a, 4);

        Assert.True(m.Normal().FreePages(block.Pfn, 4, 0, owner: null).IsSuccess);

        Assert.Equal(0, a.UsagePages);
        m.AssertConsistent();
    }

    [Fact]
    public void SplitPage_ChargesEveryPage_AndARangeFreeUnchargesEach()
    {
        var m = WithMemcgs();
        var zone = m.Normal();
        var a = m.FindMemcg("a")!;
        var block = Alloc(m, a, 4);
        Assert.True(zone.SplitPage(block.Pfn, 4, a).IsSuccess);
        Assert.All(Enumerable.Range(0, 16), i => Assert.Same(a, zone.MemcgOf(block.Pfn + i)));

        Assert.True(zone.FreeContigRange(block.Pfn, 5, FreeStrategy.Chunked, 0, null, a).IsSuccess);
        Assert.Equal(11, a.UsagePages);
        Assert.True(zone.FreePagesBulk([block.Pfn + 5, block.Pfn + 6], FreeStrategy.PerPage, 0, null, a).IsSuccess);
        Assert.Equal(9, a.UsagePages);
        m.AssertConsistent();
    }

    [Fact]
    public void FreePages_OfAStillReferencedBlock_UnchargesTheTailsItFrees()
    {
        var m = WithMemcgs();
        var zone = m.Normal();
        var a = m.FindMemcg("a")!;
        var block = Alloc(m, a, 3);
        Assert.True(zone.GetPage(block.Pfn, a).IsSuccess);

        Assert.True(zone.FreePages(block.Pfn, 3, 0, a).IsSuccess); // ___free_pages(): tails go, the head stays

        Assert.Equal(1, a.UsagePages);
        m.AssertConsistent();
    }

    [Fact]
    public void AHwPoisonPage_IsUnchargedWhenFreed_AsFreePagesPrepareUnchargesBeforeItsHwPoisonCheck()
    {
        var m = WithMemcgs();
        var zone = m.Normal();
        var a = m.FindMemcg("a")!;
        var page = Alloc(m, a, 0);
        Assert.True(zone.SetHwPoison(page.Pfn, a).IsSuccess);

        Assert.True(zone.FreePages(page.Pfn, 0, 0, a).IsSuccess);

        Assert.Equal(0, a.UsagePages); // the page is leaked, not charged: memory.current no longer counts it
        m.AssertConsistent();
    }

    [Fact]
    public async Task RacingAllocationsOfOneMemcg_NeverTakeItPastMemoryMax()
    {
        var m = WithMemcgs(maxA: 64, cpus: 2);
        var a = m.FindMemcg("a")!;
        var held = new System.Collections.Concurrent.ConcurrentBag<(long Pfn, int Order)>();
        var highest = 0L;
        var workers = Enumerable.Range(0, 4).Select(w => Task.Run(() =>
        {
            var random = new Random(w);
            for (var i = 0; i < 2000; i++)
            {
                if (random.Next(3) > 0 && m.AllocPages(m.Normal(), random.Next(4), Gfp.KernelAccount, w % 2, a) is { IsSuccess: true } block)
                {
                    held.Add((block.Value.Pfn, block.Value.Order));
                }
                else if (held.TryTake(out var page))
                {
                    Assert.True(m.Normal().FreePages(page.Pfn, page.Order, w % 2, a).IsSuccess);
                }
                var usage = a.UsagePages;
                Assert.True(usage <= 64, $"memory.current {usage} passed memory.max 64");
                InterlockedMax(ref highest, usage);
            }
        }, TestContext.Current.CancellationToken)).ToArray();
        await Task.WhenAll(workers);

        Assert.Equal(held.Sum(h => 1L << h.Order), a.UsagePages);
        Assert.InRange(highest, 56, 64); // the limit was reached, not just approached
        Assert.True(a.MaxEvents > 0);
        m.AssertConsistent();
    }

    private static void InterlockedMax(ref long target, long value)
    {
        for (var seen = Interlocked.Read(ref target); value > seen; seen = Interlocked.Read(ref target))
        {
            if (Interlocked.CompareExchange(ref target, value, seen) == seen)
            {
                return;
            }
        }
    }

    [Fact]
    public async Task RacingFreesForOneMemcg_NeverTouchPagesHandedToAnother()
    {
        var m = WithMemcgs(cpus: 2);
        var zone = m.Normal();
        var (a, b) = (m.FindMemcg("a")!, m.FindMemcg("b")!);
        for (var round = 0; round < 300; round++)
        {
            var block = Alloc(m, a, 3, cpu: round % 2);
            Assert.True(zone.SplitPage(block.Pfn, 3, a).IsSuccess);
            var strategy = FreeStrategies.All[round % FreeStrategies.All.Count].Strategy;
            var racers = new[]
            {
                Task.Run(() => { zone.FreeContigRange(block.Pfn, 8, strategy, 0, null, a); }, TestContext.Current.CancellationToken),
                Task.Run(() => { zone.FreePagesBulk([.. Enumerable.Range(0, 8).Select(i => block.Pfn + i)], strategy, 1, null, a); }, TestContext.Current.CancellationToken),
                Task.Run(() => { zone.FreePages(block.Pfn, 0, 1, a); }, TestContext.Current.CancellationToken),
            };
            var taken = new List<long>();
            for (var i = 0; i < 8; i++)
            {
                if (m.AllocPages(zone, 0, Gfp.KernelAccount, i % 2, b) is { IsSuccess: true } page)
                {
                    taken.Add(page.Value.Pfn);
                }
            }
            await Task.WhenAll(racers);

            // Whatever b was handed is still b's: referenced once and charged to b.
            Assert.All(taken, pfn => Assert.Equal((1, b), (zone.GetPageState(pfn).Value.Refcount, zone.MemcgOf(pfn))));
            Assert.All(taken, pfn => Assert.True(zone.FreePages(pfn, 0, 0, b).IsSuccess));
            for (var pfn = block.Pfn; pfn < block.Pfn + 8; pfn++)
            {
                if (zone.GetPageState(pfn).Value.Where == PageLocation.Allocated)
                {
                    Assert.True(zone.FreePages(pfn, 0, 0, a).IsSuccess);
                }
            }
            m.AssertConsistent();
            Assert.Equal((0, 0), (a.UsagePages, b.UsagePages));
        }
    }
}
