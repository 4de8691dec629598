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

    /// <summary>
    /// One step of a sequence, as a value that prints as the kernel call it makes, so a shrunk
    /// failure reads as a program: <c>split_page(held #3)</c>. Steps that name an allocation pick it
    /// by index among those still held (modulo their number) when they run.
    /// </summary>
    public abstract record KernelCall;

    public sealed record AllocPages(int Zone, int Order, string Gfp, int Cpu) : KernelCall
    {
        public override string ToString() => $"alloc_pages(zone #{Zone}, order {Order}, {Gfp}, cpu {Cpu})";
    }

    public sealed record SplitPage(int Held) : KernelCall
    {
        public override string ToString() => $"split_page(held #{Held})";
    }

    public sealed record GetPage(int Held) : KernelCall
    {
        public override string ToString() => $"get_page(held #{Held})";
    }

    public sealed record PutPage(int Held, int Cpu) : KernelCall
    {
        public override string ToString() => $"put_page(held #{Held}, cpu {Cpu})";
    }

    public sealed record FreeContigRange(int Held, FreeStrategy Strategy, int Cpu) : KernelCall
    {
        public override string ToString() => $"free_contig_range(held #{Held} and the split pages after it, {FreeStrategies.Name(Strategy)}, cpu {Cpu})";
    }

    public sealed record DrainPages(int Held, int? Cpu) : KernelCall
    {
        public override string ToString() => $"drain_pages(zone of held #{Held}, {(Cpu is { } c ? $"cpu {c}" : "every cpu")})";
    }

    public sealed record FreePages(int Held, int Cpu) : KernelCall
    {
        public override string ToString() => $"__free_pages(held #{Held}, its order, cpu {Cpu})";
    }

    private static readonly Gen<int> AnyHeld = Gen.Int[0, 1000];
    private static readonly Gen<int> AnyCpu = Gen.Int[0, 1];

    /// <summary>Allocations twice as often as each other call, frees twice as often too (as before).</summary>
    private static readonly Gen<KernelCall> Calls = Gen.Frequency<KernelCall>(
        (1, Gen.Select(Gen.Int[0, 1], Gen.Int[0, 10], Gen.OneOf(GfpChoices), AnyCpu, (z, o, g, c) => (KernelCall)new AllocPages(z, o, g, c))),
        (1, Gen.Select(Gen.Int[0, 1], Gen.Int[0, 3], Gen.OneOf(GfpChoices), AnyCpu, (z, o, g, c) => (KernelCall)new AllocPages(z, o, g, c))),
        (1, AnyHeld.Select(h => (KernelCall)new SplitPage(h))),
        (1, AnyHeld.Select(h => (KernelCall)new GetPage(h))),
        (1, Gen.Select(AnyHeld, AnyCpu, (h, c) => (KernelCall)new PutPage(h, c))),
        (1, Gen.Select(AnyHeld, Gen.Enum<FreeStrategy>(), AnyCpu, (h, s, c) => (KernelCall)new FreeContigRange(h, s, c))),
        (1, Gen.Select(AnyHeld, Gen.Int[-1, 1], (h, c) => (KernelCall)new DrainPages(h, c < 0 ? null : c))),
        (2, Gen.Select(AnyHeld, AnyCpu, (h, c) => (KernelCall)new FreePages(h, c))));

    [Fact]
    public void RandomOperations_ConservePages_NeverOverlap_AndCoalesceBackToBoot()
    {
        Calls.Array[1, 120].Sample(RunSequence, iter: 60, threads: 1);
    }

    private static void RunSequence(KernelCall[] calls)
    {
        var machine = TestMachines.Small(cpus: 2);
        var boot = machine.BuddyInfo();
        var held = new List<Held>();

        foreach (var call in calls)
        {
            if (call is AllocPages alloc)
            {
                Assert.True(Gfp.TryParse(alloc.Gfp, out var gfp, out _));
                var result = machine.AllocPages(machine.Zones[alloc.Zone], alloc.Order, gfp, alloc.Cpu);
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
            else if (held.Count > 0)
            {
                Run(call, held);
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

    /// <summary>A step on something held; a step the model cannot make (split a compound page) is skipped.</summary>
    private static void Run(KernelCall call, List<Held> held)
    {
        Held Pick(int index) => held[index % held.Count];
        switch (call)
        {
            case SplitPage s when Pick(s.Held) is { Compound: false, Order: > 0, Refs: 1 } h:
                Assert.True(h.Zone.SplitPage(h.Pfn, h.Order).IsSuccess);
                held.Remove(h);
                for (var i = 0; i < 1 << h.Order; i++)
                {
                    held.Add(new Held(h.Zone, h.Pfn + i, 0, false, Split: true));
                }
                break;
            case GetPage g:
                var got = Pick(g.Held);
                Assert.Equal(got.Refs + 1, got.Zone.GetPage(got.Pfn).Value.Refcount);
                got.Refs++;
                break;
            case PutPage p when Pick(p.Held) is var h && (h.Compound || h.Order == 0 || h.Refs > 1):
                Assert.Equal(h.Refs - 1, h.Zone.PutPage(h.Pfn, p.Cpu).Value.Refcount);
                if (--h.Refs == 0)
                {
                    held.Remove(h);
                }
                break;
            case FreeContigRange f:
                FreeRangeOfSplitPages(held, Pick(f.Held), f.Strategy, f.Cpu);
                break;
            case DrainPages d:
                Assert.True(Pick(d.Held).Zone.DrainPages(d.Cpu).IsSuccess);
                break;
            case FreePages f:
                FreeHeld(held, Pick(f.Held), f.Cpu);
                break;
        }
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
