using PageAlloc.Domain.Model;
using PageAlloc.Domain.Replay;

namespace PageAlloc.Tests.Unit;

/// <summary>Reading kmem traces as perf and ftrace print them, and the replay's rules.</summary>
public class ReplayTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    // perf script (the comm may hold spaces)
    [InlineData("     kworker/u8:1 19591 [001]  3521.557970:             kmem:mm_page_alloc: page=0x175b1d pfn=0x175b1d order=0 migratetype=0 gfp_flags=GFP_HIGHUSER|__GFP_ACCOUNT",
        KmemEvent.Alloc, 1, 0x175b1dL, 0, "GFP_HIGHUSER|__GFP_ACCOUNT")]
    [InlineData("  Web Content 19592 [000]  3521.559551:              kmem:mm_page_free: page=0x1746fa pfn=0x1746fa order=2",
        KmemEvent.Free, 0, 0x1746faL, 2, null)]
    // ftrace's trace file (with the irqs-off/need-resched/... flags column)
    [InlineData("             git-19594   [003] d..2.  3521.562218: mm_page_alloc_zone_locked: page=00000000c2ac6b39 pfn=0x106b5b order=0 migratetype=0 percpu_refill=1",
        KmemEvent.AllocZoneLocked, 3, 0x106b5bL, 0, null)]
    // trace-cmd report
    [InlineData("             tar-2001  [000]  8341.002341: mm_page_free_batched: page=0xffffea0004a1b2c0 pfn=0x1286cb order=0",
        KmemEvent.FreeBatched, 0, 0x1286cbL, 0, null)]
    // an older kernel's decimal pfn
    [InlineData("          <idle>-0     [001] ..s1.   100.000001: mm_page_pcpu_drain: page=ffffea0000a8c9c0 pfn=172839 order=0 migratetype=1",
        KmemEvent.PcpuDrain, 1, 172839L, 0, null)]
    public void Parser_ReadsPerfScriptFtraceAndTraceCmdLines(string line, KmemEvent kind, int cpu, long pfn, int order, string? gfp)
    {
        Assert.True(KmemTraceParser.TryParse(line, out var record));
        Assert.Equal((kind, cpu, pfn, order, gfp), (record.Event, record.Cpu, record.Pfn, record.Order, record.Gfp));
    }

    [Theory]
    [InlineData("")]
    [InlineData("# tracer: nop")]
    [InlineData("            perf 19591 [001]  3521.557970:          sched:sched_switch: prev_comm=perf")]
    [InlineData("            perf 19591 [001]  3521.557970:             kmem:mm_page_alloc: page=0x1 pfn=0xZZ order=0")]
    [InlineData("hello world")]
    public void Parser_RefusesWhatIsNotAKmemEvent(string line) => Assert.False(KmemTraceParser.TryParse(line, out _));

    private static string Line(int cpu, string evt, long pfn, int order, string? gfp = null) =>
        $"            test 1 [{cpu:D3}]  1.000000: kmem:{evt}: page=0x{pfn:x} pfn=0x{pfn:x} order={order}" + (gfp is null ? "" : $" migratetype=0 gfp_flags={gfp}");

    [Fact]
    public void TheTracesClock_RunsTheVmstatWorker_OncePerSecond()
    {
        // Three seconds of trace: two vmstat intervals, each decaying the pcp's high (decay_pcp_high()).
        var machine = TestMachines.Small(cpus: 1);
        var zone = machine.Normal();
        var replayer = new TraceReplayer(machine, zone);
        var pfn = 0x5000L;
        for (var i = 0; i < 400; i++, pfn++)
        {
            replayer.Read(Line(0, "mm_page_alloc", pfn, 0, "GFP_KERNEL").Replace(" 1.000000:", " 7.250000:", StringComparison.Ordinal));
        }
        var raised = zone.Stats().Pcp[0].High;

        replayer.Read(Line(0, "mm_page_free", 0x5000, 0).Replace(" 1.000000:", " 9.010000:", StringComparison.Ordinal));

        Assert.Equal(2, replayer.Result().Simulated.VmstatIntervals);
        Assert.True(zone.Stats().Pcp[0].High < raised, $"high {zone.Stats().Pcp[0].High} did not decay from {raised}");
        machine.AssertConsistent();
    }

    private static ReplayResult Replay(params string[] lines)
    {
        var machine = TestMachines.Small(cpus: 2);
        var replayer = new TraceReplayer(machine, machine.Normal());
        foreach (var line in lines)
        {
            replayer.Read(line);
        }
        machine.AssertConsistent();
        return replayer.Result();
    }

    [Fact]
    public void AnAllocationAndItsFree_AreReplayed_AndLeaveNothingLive()
    {
        var r = Replay(Line(0, "mm_page_alloc", 0x5000, 2, "GFP_KERNEL"), Line(1, "mm_page_free", 0x5000, 2));

        Assert.Equal((1, 1, 0), (r.Allocations, r.Frees, r.LiveAtEnd));
        Assert.Empty(r.Skipped);
    }

    [Fact]
    public void AFreeOfAPageAllocatedBeforeTheTrace_IsCountedAndSkipped()
    {
        var r = Replay(Line(0, "mm_page_free", 0x7777, 0));

        Assert.Equal(1, r.Skipped["allocated-before-trace"]);
        Assert.Equal(0, r.Frees);
    }

    [Fact]
    public void FreeBatched_RightAfterTheSamePagesFree_IsTheSameFree()
    {
        var r = Replay(Line(0, "mm_page_alloc", 0x5000, 0, "GFP_KERNEL"), Line(0, "mm_page_free", 0x5000, 0), Line(0, "mm_page_free_batched", 0x5000, 0));

        Assert.Equal(1, r.Frees);
        Assert.Equal(1, r.Skipped["batched-duplicate"]);
    }

    [Fact]
    public void AFreeOfOnePageOfANonCompoundBlock_SplitsItFirst()
    {
        var r = Replay(Line(0, "mm_page_alloc", 0x5000, 2, "GFP_KERNEL"), Line(0, "mm_page_free", 0x5002, 0), Line(0, "mm_page_free", 0x5000, 0));

        Assert.Equal(1, r.Splits);
        Assert.Equal(2, r.Frees);
        Assert.Equal(2, r.LiveAtEnd); // 0x5001 and 0x5003 still held
    }

    [Fact]
    public void AnAllocationOfALivePfn_FreesTheStaleBlockFirst()
    {
        var r = Replay(Line(0, "mm_page_alloc", 0x5000, 0, "GFP_KERNEL"), Line(0, "mm_page_alloc", 0x5000, 0, "GFP_KERNEL"));

        Assert.Equal(1, r.StaleFreed);
        Assert.Equal(1, r.LiveAtEnd);
    }

    [Fact]
    public void ARealFailure_AndLinesThatAreNotEvents_AreCountedAndQuoted()
    {
        var r = Replay("# tracer: nop", Line(0, "mm_page_alloc", 0, 3, "GFP_KERNEL"), "garbage");

        Assert.Equal(1, r.Skipped["failed-in-trace"]);
        Assert.Equal(2, r.NotEvents);
        Assert.Equal(["# tracer: nop", "garbage"], r.FirstNotEvents);
    }

    [Fact]
    public void ExtfragEvents_AreCountedByMigratetype_ClaimOrSteal_OnBothSides()
    {
        // Every pageblock boots Movable: the first unmovable allocation claims one, as the kernel's would.
        var extfrag = "            test 1 [000]  1.000000: kmem:mm_page_alloc_extfrag: page=0x9 pfn=0x9 alloc_order=0 fallback_order=10 pageblock_order=9 alloc_migratetype=0 fallback_migratetype=1 fragmenting=0 change_ownership=1";

        var r = Replay(extfrag, Line(0, "mm_page_alloc", 0x5000, 0, "GFP_KERNEL"));

        Assert.Equal(1, r.Kernel.FallbacksByMigratetype["Unmovable from Movable (claim)"]);
        Assert.Equal(1, r.Simulated.FallbacksByMigratetype["Unmovable from Movable (claim)"]);
    }

    [Fact]
    public async Task TheRealTrace_ReplaysWhole_SideBySideWithTheKernelsOwnCounts()
    {
        var machine = new PageAlloc.Domain.Allocator.Machine(MachineConfig.Default());
        var replayer = new TraceReplayer(machine, machine.FindZone("Normal")!, timelineEvery: 1000);
        await using var file = File.OpenRead(Path.Combine(AppContext.BaseDirectory, "Fixtures", "traces", "git-clone-tar.perf-script.txt.gz"));

        var r = await replayer.ReplayAsync(TraceInput.Open(file, gzip: true), Ct);

        Assert.Equal(4196, r.Events);
        Assert.Equal(0, r.NotEvents);
        Assert.Equal(537, r.Kernel.ZoneLockedRefillBlocksByOrder.Sum() + r.Kernel.ZoneLockedBuddyBlocksByOrder.Sum());
        Assert.True(r.Allocations > 1500);
        Assert.True(r.Skipped["allocated-before-trace"] > 0);
        Assert.True(r.Skipped["batched-duplicate"] > 0);
        Assert.True(r.Simulated.PcpRefills > 0);
        Assert.Equal(r.Simulated.FallbackClaims + r.Simulated.FallbackSteals, r.Simulated.FallbacksByMigratetype.Values.Sum());
        Assert.Equal(0, r.Simulated.FallbacksLost);
        Assert.Equal(5, r.Timeline.Length); // every 1000 events, and the end
        Assert.Equal(r.Final.Buddyinfo, machine.FindZone("Normal")!.Stats().NrFree);
        machine.AssertConsistent();
    }
}
