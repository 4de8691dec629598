using PageAlloc.Domain.Allocator;
using PageAlloc.Domain.FaultInjection;
using PageAlloc.Domain.Model;

namespace PageAlloc.Tests.Unit;

/// <summary>
/// fail_page_alloc as Documentation/fault-injection/fault-injection.rst describes it and
/// should_fail_alloc_page() / should_fail_ex() decide: each attribute's rule, and that an injected
/// failure changes nothing and is counted apart from real ones.
/// </summary>
public class FailPageAllocTests
{
    private static Machine Machine(int cpus = 1) => TestMachines.SingleZone(0x100000, 8192, cpus);

    private static PageResult<AllocatedBlock> Alloc(Machine m, int order, GfpFlags gfp) => m.AllocPages(m.Normal(), order, gfp, 0);

    /// <summary>Fails every eligible call: probability 100, no limit on times, every order and gfp.</summary>
    private static void FailEverything(FailPageAlloc f)
    {
        f.Probability = 100;
        f.Times = -1;
        f.MinOrder = 0;
        f.IgnoreGfpWait = false;
        f.IgnoreGfpHighmem = false;
    }

    [Fact]
    public void ANewMachine_HasTheKernelsDefaults_AndInjectsNothing()
    {
        var m = Machine();
        var f = m.FailPageAlloc;

        Assert.Equal((0, 1L, 1, 0, 2, 1, true, true), (f.Probability, f.Interval, f.Times, f.Space, f.Verbose, f.MinOrder, f.IgnoreGfpWait, f.IgnoreGfpHighmem));
        for (var i = 0; i < 100; i++)
        {
            Assert.True(Alloc(m, 1, Gfp.Atomic).IsSuccess);
        }
        Assert.Equal(0, f.Injected);
    }

    [Fact]
    public void AnInjectedFailure_ChangesNothing_AndIsCountedApartFromRealFailures()
    {
        var m = Machine();
        FailEverything(m.FailPageAlloc);
        var before = m.Fingerprint();

        var result = Alloc(m, 3, Gfp.Kernel);

        Assert.Equal(PageErrorKind.InjectedFailure, result.Error?.Kind);
        Assert.Equal(before, m.Fingerprint()); // no pages, no allocation-failure event
        Assert.Equal(1, m.FailPageAlloc.Injected);
    }

    [Fact]
    public void Times_BoundsTheFailures_ThenAllocationsSucceed()
    {
        var m = Machine();
        FailEverything(m.FailPageAlloc);
        m.FailPageAlloc.Times = 2;

        var kinds = Enumerable.Range(0, 4).Select(_ => Alloc(m, 0, Gfp.Kernel).Error?.Kind).ToArray();

        Assert.Equal([PageErrorKind.InjectedFailure, PageErrorKind.InjectedFailure, null, null], kinds);
        Assert.Equal(0, m.FailPageAlloc.Times);
    }

    [Fact]
    public void MinOrder_NoFail_IgnoreGfpWait_AndIgnoreGfpHighmem_LeaveTheirAllocationsAlone()
    {
        var m = Machine();
        var f = m.FailPageAlloc;
        f.Probability = 100;
        f.Times = -1; // min-order 1, ignore-gfp-wait and ignore-gfp-highmem Y: the defaults

        Assert.True(Alloc(m, 0, Gfp.Atomic).IsSuccess); // below min-order
        Assert.True(Alloc(m, 1, Gfp.Kernel).IsSuccess); // may sleep
        Assert.True(Alloc(m, 1, Gfp.Atomic | GfpFlags.HighMem).IsSuccess); // highmem
        Assert.True(Alloc(m, 1, Gfp.Atomic | GfpFlags.NoFail).IsSuccess); // __GFP_NOFAIL is never failed
        Assert.Equal(PageErrorKind.InjectedFailure, Alloc(m, 1, Gfp.Atomic).Error?.Kind);
    }

    [Fact]
    public void Interval_FailsOnlyEveryIntervalthEligibleCall()
    {
        var m = Machine();
        FailEverything(m.FailPageAlloc);
        m.FailPageAlloc.Interval = 3;

        var failed = Enumerable.Range(1, 9).Where(_ => !Alloc(m, 0, Gfp.Kernel).IsSuccess).Count();

        Assert.Equal(3, failed);
    }

    [Fact]
    public void Space_IsABudgetOfPagesSpentBeforeFailuresStart()
    {
        // should_fail_ex(): while space > size, space -= size and the call goes through.
        var m = Machine();
        FailEverything(m.FailPageAlloc);
        m.FailPageAlloc.Space = 8;

        var kinds = Enumerable.Range(0, 4).Select(_ => Alloc(m, 1, Gfp.Kernel).Error?.Kind).ToArray();

        Assert.Equal([null, null, null, PageErrorKind.InjectedFailure], kinds); // 8 -> 6 -> 4 -> 2, then 2 is not > 2
    }

    [Fact]
    public void RacingAllocations_NeverGetMoreFailuresThanTimes()
    {
        var m = Machine(cpus: 4);
        FailEverything(m.FailPageAlloc);
        m.FailPageAlloc.Times = 100;
        var failures = 0;

        Parallel.For(0, 4, new ParallelOptions { MaxDegreeOfParallelism = 4 }, cpu =>
        {
            for (var i = 0; i < 2000; i++)
            {
                var result = m.AllocPages(m.Normal(), 0, Gfp.Kernel, cpu);
                if (result.Error?.Kind == PageErrorKind.InjectedFailure)
                {
                    Interlocked.Increment(ref failures);
                }
                else if (result.IsSuccess)
                {
                    Assert.True(m.Normal().FreePages(result.Value.Pfn, 0, cpu).IsSuccess);
                }
            }
        });

        Assert.Equal(100, failures);
        Assert.Equal(100, m.FailPageAlloc.Injected);
        m.AssertConsistent();
    }
}
