using PageAlloc.Domain.Allocator;
using PageAlloc.Domain.Model;

namespace PageAlloc.Tests.Unit;

/// <summary>
/// Two calls race on the same pages while a third thread allocates order-0 pages from the same
/// pcps, so a page freed by one racer can be handed straight to the thief. Every free path checks
/// and drops its references in one step, as put_page_testzero() does, so the outcome is always one
/// some order of the calls would give: a range free drops a reference on every page of its range
/// or on none, each page's refcount is what it was given less what was dropped (a double free is
/// refused, never half done), pages no racer named are untouched, and once everything held is
/// freed the zone has no allocated page and passes the invariant checker. (Which client may free
/// a page is the memory cgroup's business: see <see cref="MemcgTests"/>.)
/// </summary>
public class FreeRaceTests
{
    /// <summary>The calls that drop, take or restructure references on allocated pages.</summary>
    public enum PageCall
    {
        FreePages,
        PutPage,
        GetPage,
        SplitPage,
        FreeContigRangePerPage,
        FreeContigRangeChunked,
        FreeContigRangeUpstream,
        FreePagesBulkPerPage,
        FreePagesBulkChunked,
        FreePagesBulkUpstream,
    }

    private const int Order = 3;
    private const int Pages = 1 << Order;
    private const int Rounds = 400;

    public static TheoryData<PageCall, PageCall> EveryPair()
    {
        var data = new TheoryData<PageCall, PageCall>();
        var calls = Enum.GetValues<PageCall>();
        for (var i = 0; i < calls.Length; i++)
        {
            for (var j = i; j < calls.Length; j++)
            {
                data.Add(calls[i], calls[j]);
            }
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(EveryPair))]
    public void TwoCallsRacingOnTheSamePages_DropOnlyReferencesThePagesHad(PageCall first, PageCall second)
    {
        var machine = TestMachines.SingleZone(0x10000, 2048, cpus: 2);
        var zone = machine.Normal();
        // split_page races need a block that is not split yet; the others race on order-0 pages.
        var split = first == PageCall.SplitPage || second == PageCall.SplitPage;
        var outcomes = new (bool Ok, long Dropped, bool Got)[2];
        var stolen = new List<long>();
        long block = 0;

        using var start = new Barrier(4);
        using var end = new Barrier(4);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        var racers = new[]
        {
            new Thread(() => RunRounds(() => outcomes[0] = Run(zone, first, block, split, cpu: 0))),
            new Thread(() => RunRounds(() => outcomes[1] = Run(zone, second, block, split, cpu: 1))),
            new Thread(() => RunRounds(() => Steal(machine, zone, stolen))),
        };
        foreach (var racer in racers)
        {
            racer.Start();
        }
        try
        {
            RunChecks();
        }
        finally
        {
            stop.Cancel(); // a failed check must not leave the racers waiting at a barrier
            foreach (var racer in racers)
            {
                racer.Join();
            }
        }

        void RunChecks()
        {
            for (var round = 0; round < Rounds; round++)
            {
                block = machine.AllocPages(zone, Order, Gfp.Kernel, round % 2).Value.Pfn;
                if (!split)
                {
                    Assert.True(zone.SplitPage(block, Order).IsSuccess);
                }
                stolen.Clear();
                start.SignalAndWait(stop.Token);
                end.SignalAndWait(stop.Token);

                var context = $"round {round}, {first} with {second}: {outcomes[0]} {outcomes[1]}";
                foreach (var (ok, dropped, _) in outcomes)
                {
                    Assert.True(!ok || dropped is 0 or 1 or Pages, $"{context}: a range free reported {dropped} of {Pages} pages");
                }
                if (!split)
                {
                    // Linearisable: each page's refcount is what it was given (one at the split, one
                    // per get_page, one each time the thief was handed it) less what was dropped.
                    for (var i = 0; i < Pages; i++)
                    {
                        var pfn = block + i;
                        var given = 1 + stolen.Count(s => s == pfn) + (i == 0 ? outcomes.Count(o => o.Ok && o.Got) : 0);
                        var dropped = outcomes.Count(o => o.Ok && (o.Dropped == Pages || (o.Dropped == 1 && i == 0)));
                        Assert.Equal((context, pfn, given - dropped), (context, pfn, zone.GetPageState(pfn).Value.Refcount));
                    }
                }
                foreach (var pfn in stolen.Where(p => p < block || p >= block + Pages))
                {
                    // Pages no racer was asked to touch are still the thief's.
                    Assert.Equal((context, pfn, 1), (context, pfn, zone.GetPageState(pfn).Value.Refcount));
                }
                FreeWhatIsLeft(zone, [.. Enumerable.Range(0, Pages).Select(i => block + i), .. stolen]);
                machine.AssertConsistent();
                Assert.Equal(0, zone.Stats().AllocatedPages);
            }
        }

        void RunRounds(Action act)
        {
            try
            {
                for (var round = 0; round < Rounds; round++)
                {
                    start.SignalAndWait(stop.Token);
                    act();
                    end.SignalAndWait(stop.Token);
                }
            }
            catch (OperationCanceledException)
            {
            }
        }
    }

    /// <summary>One call on the block's pages: single-page calls on its first page (free_pages at the block's order while it is unsplit), range calls on all of it.</summary>
    private static (bool Ok, long Dropped, bool Got) Run(Zone zone, PageCall call, long block, bool unsplit, int cpu)
    {
        long[] all = [.. Enumerable.Range(0, Pages).Select(i => block + i)];
        switch (call)
        {
            case PageCall.FreePages:
                var freed = zone.FreePages(block, unsplit ? Order : 0, cpu);
                return (freed.IsSuccess, 1, false);
            case PageCall.PutPage:
                var put = zone.PutPage(block, cpu);
                return (put.IsSuccess, 1, false);
            case PageCall.GetPage:
                return (zone.GetPage(block).IsSuccess, 0, true);
            case PageCall.SplitPage:
                return (zone.SplitPage(block, Order).IsSuccess, 0, false);
            default:
                var strategy = FreeStrategies.All[(call - PageCall.FreeContigRangePerPage) % FreeStrategies.All.Count].Strategy;
                var result = call < PageCall.FreePagesBulkPerPage
                    ? zone.FreeContigRange(block, Pages, strategy, cpu)
                    : zone.FreePagesBulk(all, strategy, cpu);
                return (result.IsSuccess, result.IsSuccess ? result.Value.Freed + result.Value.NotFreed + result.Value.Leaked : 0, false);
        }
    }

    /// <summary>Allocates order-0 pages from both pcps while the racers run, keeping what it gets.</summary>
    private static void Steal(Machine machine, Zone zone, List<long> stolen)
    {
        var machineCpu = 0;
        for (var i = 0; i < 16; i++)
        {
            var page = machine.AllocPages(zone, 0, Gfp.Kernel, machineCpu);
            if (page.IsSuccess)
            {
                stolen.Add(page.Value.Pfn);
            }
            machineCpu ^= 1;
        }
    }

    /// <summary>Frees every reference still held on these pages, whatever the race left.</summary>
    private static void FreeWhatIsLeft(Zone zone, long[] pfns)
    {
        foreach (var pfn in pfns)
        {
            while (zone.GetPageState(pfn).Value is { Where: PageLocation.Allocated } page && page.BlockPfn == pfn)
            {
                Assert.True(zone.FreePages(pfn, page.BlockOrder, 0).IsSuccess);
            }
        }
    }
}

/// <summary>What a reader sees of a page between the drop of its last reference and its return to the buddy.</summary>
public class FrozenPageTests
{
    [Fact]
    public void APageWhoseFreeIsUnderWay_IsReportedFrozen_AndRefusedAsBeingFreed()
    {
        var machine = TestMachines.SingleZone(0x10000, 4096);
        var zone = machine.Normal();
        var block = machine.Alloc("Normal", 10);
        PageLocation during;
        PageError? secondFree;
        Thread freer;
        using (zone.ZoneLock.Enter())
        {
            // An order-10 free goes straight to the buddy and so waits here for zone->lock, its
            // reference already dropped: the page is frozen until the lock is released.
            freer = new Thread(() => zone.FreePages(block.Pfn, 10, 0));
            freer.Start();
            var waited = System.Diagnostics.Stopwatch.StartNew();
            // GetPageState would take zone->lock, which is not reentrant: read the page as it does, unlocked.
            while (zone.LocateBlock(zone.IndexOf(block.Pfn)).Kind != PageLocation.Frozen && waited.Elapsed < TimeSpan.FromSeconds(10))
            {
                Thread.Sleep(1);
            }
            during = zone.LocateBlock(zone.IndexOf(block.Pfn)).Kind;
            secondFree = zone.FreePages(block.Pfn, 10, 0).Error;
        }
        freer.Join();

        Assert.Equal(PageLocation.Frozen, during); // what GetPageState reports as where
        Assert.Equal(PageErrorKind.PageFree, secondFree?.Kind);
        Assert.Contains("is being freed", secondFree!.Detail, StringComparison.Ordinal);
        Assert.Equal(PageLocation.Buddy, zone.GetPageState(block.Pfn).Value.Where);
        machine.AssertConsistent();
    }
}
