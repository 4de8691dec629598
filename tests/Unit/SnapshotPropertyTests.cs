using CsCheck;
using PageAlloc.Domain.Allocator;
using PageAlloc.Domain.Import;
using PageAlloc.Domain.Model;
using PageAlloc.Domain.Snapshots;

namespace PageAlloc.Tests.Unit;

/// <summary>
/// A snapshot or a fork is the whole machine: for random histories (an optional import of
/// fragmented free lists, then allocations at every order with several gfp masks, highatomic
/// ones under pressure, memcg charges, splits, references, HWPoison, frees of every kind, drains,
/// vmstat intervals, fail_page_alloc settings, alloc_contig_range and alloc_contig_pages), the
/// original, <c>Read(Write(original))</c> and <c>original.Fork()</c> are driven by the same further
/// calls: every call answers the same on all three, and at the end their /proc texts, statistics,
/// page arrays and snapshots are identical and their invariants hold. A field a snapshot or a fork
/// leaves out shows as a difference as soon as a call depends on it.
/// </summary>
public class SnapshotPropertyTests
{
    /// <summary>
    /// DMA32 and a 65536-page Normal (1% is more than a pageblock, so the highatomic reserve can
    /// grow), two cpus, two memcgs, and min_free_kbytes of the case's choosing: the kernel's boot
    /// value (Normal's pcp high_min 2050, out of the frees' reach), or small ones, under which
    /// pcp->high moves with free_count and a run of order 1..3 frees drains at once (free_high).
    /// </summary>
    private static MachineConfig Config(long? minFreeKbytes)
    {
        var config = MachineConfig.SingleNode(2, minFreeKbytes,
            new ZoneConfig { Name = "DMA32", StartPfn = 4096, Pages = 4096 },
            new ZoneConfig { Name = "Normal", StartPfn = 65536, Pages = 65536 });
        config.Memcgs = [new MemcgConfig { Name = "a", MaxPages = 500 }, new MemcgConfig { Name = "b" }];
        return config;
    }

    private static readonly string[] GfpChoices =
    [
        "GFP_KERNEL", "GFP_HIGHUSER_MOVABLE", "GFP_KERNEL|__GFP_RECLAIMABLE", "GFP_ATOMIC", "GFP_KERNEL|__GFP_COMP", "GFP_NOWAIT",
        "GFP_KERNEL_ACCOUNT", "GFP_ATOMIC|__GFP_ACCOUNT|__GFP_COMP", "GFP_DMA32", "GFP_KERNEL|__GFP_NORETRY",
    ];

    /// <summary>Below every watermark but never into the highatomic reserve (see HighatomicTests).</summary>
    private const string Filler = "GFP_KERNEL|__GFP_MEMALLOC|__GFP_NORETRY";

    private static readonly string?[] MemcgChoices = [null, "a", "b"];

    /// <summary>What the driver knows of one live allocation: zone (by index), head, order, references.</summary>
    private sealed record Held(int Zone, long Pfn, int Order, bool Compound, bool Split)
    {
        public int Refs { get; set; } = 1;
    }

    /// <summary>One call, printed as the kernel call it makes (a shrunk failure reads as a program).</summary>
    public abstract record KernelCall;

    public sealed record Alloc(int Zone, int Order, int Gfp, int Cpu, int Memcg) : KernelCall
    {
        public override string ToString() => $"alloc_pages(zone #{Zone}, order {Order}, {GfpChoices[Gfp]}, cpu {Cpu}, memcg {MemcgChoices[Memcg] ?? "none"})";
    }

    public sealed record AllocMany(int Zone, int Order, int Gfp, int Cpu, int Count) : KernelCall
    {
        public override string ToString() => $"{Count} x alloc_pages(zone #{Zone}, order {Order}, {GfpChoices[Gfp]}, cpu {Cpu})";
    }

    /// <summary>Frees, one after another on one cpu, up to Count held blocks of one order with one reference (a run of frees, as free_high looks for).</summary>
    public sealed record FreeMany(int Order, int Cpu, int Count) : KernelCall
    {
        public override string ToString() => $"__free_pages(up to {Count} held order-{Order} blocks, cpu {Cpu})";
    }

    public sealed record Fill(int Zone, int Above) : KernelCall
    {
        public override string ToString() => $"fill(zone #{Zone} down to its low watermark {Above:+#;-#;+0}, {Filler})";
    }

    public sealed record Split(int Held) : KernelCall
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

    public sealed record Free(int Held, int Cpu) : KernelCall
    {
        public override string ToString() => $"__free_pages(held #{Held}, cpu {Cpu})";
    }

    public sealed record FreeRange(int Held, FreeStrategy Strategy, int Cpu) : KernelCall
    {
        public override string ToString() => $"free_contig_range(held #{Held} and the split pages after it, {FreeStrategies.Name(Strategy)}, cpu {Cpu})";
    }

    public sealed record Poison(int Held) : KernelCall
    {
        public override string ToString() => $"hwpoison(held #{Held})";
    }

    public sealed record Drain(int Zone, int? Cpu) : KernelCall
    {
        public override string ToString() => $"drain_pages(zone #{Zone}, {(Cpu is { } c ? $"cpu {c}" : "every cpu")})";
    }

    public sealed record Vmstat(int Intervals) : KernelCall
    {
        public override string ToString() => $"vmstat_update({Intervals})";
    }

    public sealed record FailSettings(int Probability, int Interval, int Times, int Space, int MinOrder, bool IgnoreWait, bool IgnoreHighmem) : KernelCall
    {
        public override string ToString() =>
            $"fail_page_alloc(probability {Probability}, interval {Interval}, times {Times}, space {Space}, min-order {MinOrder}, ignore-gfp-wait {IgnoreWait}, ignore-gfp-highmem {IgnoreHighmem})";
    }

    public sealed record ContigRange(int Zone, int Where, int Order) : KernelCall
    {
        public override string ToString() => $"alloc_contig_range(zone #{Zone}, slot {Where}, {1 << Order} pages)";
    }

    /// <summary>The system reads files: page cache on the LRU, reclaimed (and compacted) when memory runs low.</summary>
    public sealed record ReadPageCache(int Pages, bool Active, int Cpu) : KernelCall
    {
        public override string ToString() => $"page_cache({Pages} pages, {(Active ? "active" : "inactive")}, cpu {Cpu})";
    }

    public sealed record DropCaches(int Value, int Cpu) : KernelCall
    {
        public override string ToString() => $"drop_caches({Value}, cpu {Cpu})";
    }

    public sealed record CompactMemory(int Cpu) : KernelCall
    {
        public override string ToString() => $"compact_memory(cpu {Cpu})";
    }

    public sealed record ContigPages(int Zone, int Order) : KernelCall
    {
        public override string ToString() => $"alloc_contig_pages(zone #{Zone}, {1 << Order} pages)";
    }

    /// <summary>Fragmenter.Target imported into Normal before anything else (ImportFreeLists needs a freshly booted zone).</summary>
    public sealed record Fragment(int FreePages, int Order, double Unusable, int Seed)
    {
        public override string ToString() => $"fragment(Normal, {FreePages} free pages, unusable_index {Unusable:F2} at order {Order}, seed {Seed})";
    }

    private static readonly Gen<int> AnyHeld = Gen.Int[0, 1000];
    private static readonly Gen<int> AnyCpu = Gen.Int[0, 1];
    private static readonly Gen<int> AnyZone = Gen.Int[0, 1];

    private static readonly Gen<KernelCall> Calls = Gen.Frequency<KernelCall>(
        (3, Gen.Select(AnyZone, Gen.Int[0, 10], Gen.Int[0, GfpChoices.Length - 1], AnyCpu, Gen.Int[0, MemcgChoices.Length - 1], (z, o, g, c, m) => (KernelCall)new Alloc(z, o, g, c, m))),
        (3, Gen.Select(AnyZone, Gen.Int[0, 3], Gen.Int[0, GfpChoices.Length - 1], AnyCpu, Gen.Int[0, MemcgChoices.Length - 1], (z, o, g, c, m) => (KernelCall)new Alloc(z, o, g, c, m))),
        (1, Gen.Select(AnyZone, Gen.Int[0, 3], Gen.Int[0, GfpChoices.Length - 1], AnyCpu, Gen.Int[1, 64], (z, o, g, c, n) => (KernelCall)new AllocMany(z, o, g, c, n))),
        (1, Gen.Select(Gen.Int[0, 3], AnyCpu, Gen.Int[1, 64], (o, c, n) => (KernelCall)new FreeMany(o, c, n))),
        (1, Gen.Select(AnyZone, Gen.Int[-600, 400], (z, a) => (KernelCall)new Fill(z, a))),
        (2, AnyHeld.Select(h => (KernelCall)new Split(h))),
        (1, AnyHeld.Select(h => (KernelCall)new GetPage(h))),
        (1, Gen.Select(AnyHeld, AnyCpu, (h, c) => (KernelCall)new PutPage(h, c))),
        (4, Gen.Select(AnyHeld, AnyCpu, (h, c) => (KernelCall)new Free(h, c))),
        (2, Gen.Select(AnyHeld, Gen.Enum<FreeStrategy>(), AnyCpu, (h, s, c) => (KernelCall)new FreeRange(h, s, c))),
        (1, AnyHeld.Select(h => (KernelCall)new Poison(h))),
        (1, Gen.Select(AnyZone, Gen.Int[-1, 1], (z, c) => (KernelCall)new Drain(z, c < 0 ? null : c))),
        (1, Gen.Int[1, 3].Select(n => (KernelCall)new Vmstat(n))),
        (1, Gen.Select(Gen.Int[0, 100], Gen.Int[1, 3], Gen.Int[-1, 6], Gen.Int[0, 64], Gen.Int[0, 3], Gen.Bool, Gen.Bool,
            (p, i, t, s, o, w, h) => (KernelCall)new FailSettings(p, i, t, s, o, w, h))),
        (1, Gen.Select(AnyZone, Gen.Int[0, 1000], Gen.Int[0, 10], (z, w, o) => (KernelCall)new ContigRange(z, w, o))),
        (1, Gen.Select(AnyZone, Gen.Int[0, 10], (z, o) => (KernelCall)new ContigPages(z, o))),
        (2, Gen.Select(Gen.Int[1, 20000], Gen.Bool, AnyCpu, (n, a, c) => (KernelCall)new ReadPageCache(n, a, c))),
        (1, Gen.Select(Gen.Int[1, 3], AnyCpu, (v, c) => (KernelCall)new DropCaches(v, c))),
        (1, AnyCpu.Select(c => (KernelCall)new CompactMemory(c))));

    private static readonly Gen<Fragment?> Prefix = Gen.Frequency<Fragment?>(
        (2, Gen.Const((Fragment?)null)),
        (1, Gen.Select(Gen.Int[2000, 60000], Gen.Int[1, 10], Gen.Double[0, 1], Gen.Int[0, 1000], (f, o, u, s) => (Fragment?)new Fragment(f, o, u, s))));

    [Fact]
    public void ARestoreAndAFork_AnswerEveryCallAsTheOriginal_AndEndIdentical()
    {
        // Half the cases make the history's last call again first after the snapshot: state that
        // only the latest call leaves (PCPF_PREV_FREE_HIGH_ORDER, alloc_factor, free_count) then matters at once.
        Gen.Select(Gen.OneOf<long?>(null, 0, 1024, 4096), Prefix, Calls.Array[0, 80], Calls.Array[1, 80], Gen.Bool)
            .Sample((minFreeKbytes, prefix, before, after, again) =>
                RunCase(minFreeKbytes, prefix, before, again && before.Length > 0 ? [before[^1], .. after] : after), iter: 60, threads: 1);
    }

    /// <summary>
    /// A history that ends inside a run of order-2 frees on one cpu, where the next free is free_high
    /// only if PCPF_PREV_FREE_HIGH_ORDER and free_count crossed the snapshot (random histories end
    /// so only now and then).
    /// </summary>
    [Theory]
    [InlineData(0L)]
    [InlineData(1024L)]
    public void ARunOfHighOrderFrees_GoesOnAcrossTheSnapshot(long minFreeKbytes)
    {
        KernelCall[] before = [new AllocMany(1, 2, 0, 0, 64), new AllocMany(1, 2, 0, 0, 64), new FreeMany(2, 0, 40)];
        RunCase(minFreeKbytes, null, before, [new FreeMany(2, 0, 1), new FreeMany(2, 0, 40)]);
    }

    private static void RunCase(long? minFreeKbytes, Fragment? prefix, KernelCall[] before, KernelCall[] after)
    {
        var original = new Driver(new Machine(Config(minFreeKbytes)), []);
        if (prefix is { } f && Fragmenter.Target("Normal", f.FreePages, f.Order, f.Unusable, f.Seed) is { } counts)
        {
            original.Machine.Normal().ImportFreeLists(counts, f.Seed, pageCache: f.Seed % 2 == 0); // refused (nothing changes) when it does not fit
        }
        foreach (var call in before)
        {
            original.Run(call);
        }

        using var stream = new MemoryStream();
        MachineSnapshot.Write(original.Machine, stream);
        var snapshot = stream.ToArray();
        var restored = new Driver(MachineSnapshot.Read(new MemoryStream(snapshot)), original.CopyOfHeld());
        var fork = new Driver(original.Machine.Fork(), original.CopyOfHeld());
        Assert.Equal(snapshot, Bytes(restored.Machine));
        Assert.Equal(snapshot, Bytes(fork.Machine));

        for (var i = 0; i < after.Length; i++)
        {
            var expected = original.Run(after[i]);
            var r = restored.Run(after[i]);
            var k = fork.Run(after[i]);
            Assert.True(expected == r, $"call {i} ({after[i]}): the original answered\n  {expected}\nthe restored machine\n  {r}");
            Assert.True(expected == k, $"call {i} ({after[i]}): the original answered\n  {expected}\nthe fork\n  {k}");
        }

        var texts = SnapshotTests.Texts(original.Machine);
        Assert.Equal(texts, SnapshotTests.Texts(restored.Machine));
        Assert.Equal(texts, SnapshotTests.Texts(fork.Machine));
        foreach (var other in new[] { restored.Machine, fork.Machine })
        {
            for (var z = 0; z < original.Machine.Zones.Count; z++)
            {
                var (a, b) = (original.Machine.Zones[z], other.Zones[z]);
                Assert.Equal(a.RefCount, b.RefCount);
                Assert.Equal(a.Flags, b.Flags);
                Assert.Equal(a.Order, b.Order);
                Assert.Equal(a.PageblockMap().MigrateTypes, b.PageblockMap().MigrateTypes);
            }
            // The lock times are measured, not state: with the original's taken over, the snapshots
            // compare every other byte, pcp and free list order included.
            TakeLockTimes(original.Machine, other);
            Assert.Equal(Bytes(original.Machine), Bytes(other));
        }
        original.Machine.AssertConsistent();
        restored.Machine.AssertConsistent();
        fork.Machine.AssertConsistent();
    }

    private static byte[] Bytes(Machine m)
    {
        using var stream = new MemoryStream();
        MachineSnapshot.Write(m, stream);
        return stream.ToArray();
    }

    private static void TakeLockTimes(Machine from, Machine to)
    {
        for (var z = 0; z < from.Zones.Count; z++)
        {
            var (a, b) = (from.Zones[z], to.Zones[z]);
            b.ZoneLock.CopyCountersFrom(a.ZoneLock);
            b.RefLock.CopyCountersFrom(a.RefLock);
            for (var cpu = 0; cpu < from.Cpus; cpu++)
            {
                b.Pcp(cpu).Lock.CopyCountersFrom(a.Pcp(cpu).Lock);
            }
        }
    }

    /// <summary>Runs calls on one machine, keeping what it holds; each call's answer as a line of text.</summary>
    private sealed class Driver(Machine machine, List<Held> held)
    {
        public Machine Machine => machine;

        public List<Held> CopyOfHeld() => [.. held.Select(h => h with { })];

        private Zone ZoneOf(Held h) => machine.Zones[h.Zone];

        private Held Pick(int index) => held[index % held.Count];

        private static string Answer<T>(PageResult<T> result, Func<T, string> ok) =>
            result.Error is { } e ? $"{e.Kind}: {e.Detail}" : ok(result.Value);

        public string Run(KernelCall call)
        {
            switch (call)
            {
                case Alloc a:
                {
                    Assert.True(Gfp.TryParse(GfpChoices[a.Gfp], out var gfp, out _));
                    var memcg = MemcgChoices[a.Memcg] is { } name ? machine.FindMemcg(name) : null;
                    var result = machine.AllocPages(machine.Zones[a.Zone], a.Order, gfp, a.Cpu, memcg);
                    if (result.IsSuccess)
                    {
                        Hold(result.Value);
                    }
                    return Answer(result, Describe);
                }
                case AllocMany a:
                {
                    Assert.True(Gfp.TryParse(GfpChoices[a.Gfp], out var gfp, out _));
                    var answers = new List<string>();
                    for (var i = 0; i < a.Count; i++)
                    {
                        var result = machine.AllocPages(machine.Zones[a.Zone], a.Order, gfp, a.Cpu);
                        if (result.IsSuccess)
                        {
                            Hold(result.Value);
                        }
                        answers.Add(Answer(result, Describe));
                    }
                    return string.Join("\n", answers);
                }
                case FreeMany f:
                {
                    var blocks = held.Where(h => h.Order == f.Order && h.Refs == 1).Take(f.Count).ToList();
                    return string.Join("\n", blocks.Select(h => FreeHeld(h, f.Cpu)));
                }
                case Fill f:
                    return FillZone(machine.Zones[f.Zone], f.Above);
                case Vmstat v:
                    return $"drained {string.Join(",", Enumerable.Range(0, v.Intervals).Select(_ => machine.VmstatUpdate()))}";
                case ReadPageCache p:
                    return machine.ReadFilePages(p.Pages, p.Active, p.Cpu) is { IsSuccess: true } read ? read.Value.ToString() : "refused";
                case DropCaches d:
                    return machine.DropCaches(d.Value, d.Cpu) is { IsSuccess: true } dropped ? $"dropped {dropped.Value}" : "refused";
                case CompactMemory c:
                    machine.CompactMemory(c.Cpu);
                    return string.Join(",", machine.Vmscan.Counters.Read());
                case FailSettings s:
                {
                    var fail = machine.FailPageAlloc;
                    (fail.Probability, fail.Interval, fail.Times, fail.Space, fail.MinOrder, fail.IgnoreGfpWait, fail.IgnoreGfpHighmem) =
                        (s.Probability, s.Interval, s.Times, s.Space, s.MinOrder, s.IgnoreWait, s.IgnoreHighmem);
                    return "set";
                }
                case Drain d:
                    return Answer(machine.Zones[d.Zone].DrainPages(d.Cpu), n => $"drained {n}");
                case ContigRange c:
                {
                    var zone = machine.Zones[c.Zone];
                    var nr = 1L << c.Order;
                    var first = (zone.StartPfn + nr - 1) & ~(nr - 1);
                    var slots = Math.Max(1, (zone.EndPfn - first) / nr);
                    var pfn = first + (c.Where % slots * nr);
                    var result = zone.AllocContigRange(pfn, nr, Gfp.Kernel);
                    if (result.IsSuccess)
                    {
                        HoldRange(c.Zone, pfn, nr);
                    }
                    return Answer(result, p => $"range at {p:x}");
                }
                case ContigPages c:
                {
                    var nr = 1L << c.Order;
                    var result = machine.AllocContigPages(machine.Zones[c.Zone], nr, Gfp.Kernel);
                    if (result.IsSuccess)
                    {
                        HoldRange(result.Value.Zone.Index, result.Value.Pfn, nr);
                    }
                    return Answer(result, r => $"pages at {r.Zone.Key} {r.Pfn:x}");
                }
            }
            return held.Count == 0 ? "nothing held" : RunOnHeld(call);
        }

        private string RunOnHeld(KernelCall call)
        {
            switch (call)
            {
                case Split s when Pick(s.Held) is { Compound: false, Order: > 0, Refs: 1 } h:
                {
                    var result = ZoneOf(h).SplitPage(h.Pfn, h.Order);
                    Assert.True(result.IsSuccess, result.Error?.ToString());
                    held.Remove(h);
                    HoldRange(h.Zone, h.Pfn, 1L << h.Order);
                    return $"split {result.Value}";
                }
                case GetPage g:
                {
                    var h = Pick(g.Held);
                    var result = ZoneOf(h).GetPage(h.Pfn);
                    Assert.True(result.IsSuccess, result.Error?.ToString());
                    h.Refs++;
                    return $"get {result.Value}";
                }
                case PutPage p when Pick(p.Held) is var h && (h.Compound || h.Order == 0 || h.Refs > 1):
                {
                    var result = ZoneOf(h).PutPage(h.Pfn, p.Cpu);
                    Assert.True(result.IsSuccess, result.Error?.ToString());
                    if (--h.Refs == 0)
                    {
                        held.Remove(h);
                    }
                    return $"put {result.Value}";
                }
                case Free f:
                    return FreeHeld(Pick(f.Held), f.Cpu);
                case FreeRange r:
                    return FreeRangeOfSplitPages(Pick(r.Held), r.Strategy, r.Cpu);
                case Poison p when Pick(p.Held) is { Order: 0, Compound: false } h:
                {
                    var result = ZoneOf(h).SetHwPoison(h.Pfn);
                    Assert.True(result.IsSuccess, result.Error?.ToString());
                    return $"poisoned {result.Value}";
                }
            }
            return "skipped";
        }

        private void Hold(AllocatedBlock b) => held.Add(new Held(b.Zone.Index, b.Pfn, b.Order, b.Compound, Split: false));

        private void HoldRange(int zone, long pfn, long pages)
        {
            for (var i = 0L; i < pages; i++)
            {
                held.Add(new Held(zone, pfn + i, 0, false, Split: true));
            }
        }

        private static string Describe(AllocatedBlock b) =>
            $"{b.Zone.Key} {b.Pfn:x} order {b.Order} {b.MigrateType} compound {b.Compound} pcp {b.FromPcp}";

        /// <summary>Allocates with the filler until the zone's free pages are at or below its low watermark plus <paramref name="above"/>.</summary>
        private string FillZone(Zone zone, int above)
        {
            Assert.True(Gfp.TryParse(Filler, out var gfp, out _));
            var target = zone.Watermarks.Low + above;
            var blocks = 0;
            for (var order = PageAllocConstants.MaxPageOrder; order >= 4 && blocks < 400; order -= 6)
            {
                while (zone.NrFreePages - (1L << order) > target && blocks < 400)
                {
                    var result = machine.AllocPages(zone, order, gfp, 0);
                    if (!result.IsSuccess)
                    {
                        break;
                    }
                    Hold(result.Value);
                    blocks++;
                }
            }
            return $"filled {blocks} blocks, {zone.NrFreePages} pages free";
        }

        /// <summary>__free_pages() at the allocation's order: one reference dropped.</summary>
        private string FreeHeld(Held h, int cpu)
        {
            var result = ZoneOf(h).FreePages(h.Pfn, h.Order, cpu);
            Assert.True(result.IsSuccess, result.Error?.ToString());
            h.Refs--;
            if (h.Refs == 0)
            {
                held.Remove(h);
            }
            else if (!h.Compound && h.Order > 0)
            {
                held.Remove(h); // ___free_pages(): the tails went back; the holder keeps the head page alone
                held.Add(new Held(h.Zone, h.Pfn, 0, false, h.Split) { Refs = h.Refs });
            }
            return $"freed {result.Value}";
        }

        /// <summary>free_contig_range (or, chunked, free_pages_bulk in reverse) over the longest run of held split pages from h.</summary>
        private string FreeRangeOfSplitPages(Held h, FreeStrategy strategy, int cpu)
        {
            if (!h.Split)
            {
                return "not split";
            }
            var split = held.Where(x => x.Split && x.Zone == h.Zone).ToDictionary(x => x.Pfn);
            var run = new List<Held> { h };
            while (split.GetValueOrDefault(run[^1].Pfn + 1) is { } next && run.Count < 2048)
            {
                run.Add(next);
            }
            var zone = ZoneOf(h);
            var result = strategy == FreeStrategy.Chunked && run.Count > 2
                ? zone.FreePagesBulk(run.Select(r => r.Pfn).Reverse().ToList(), strategy, cpu)
                : zone.FreeContigRange(h.Pfn, run.Count, strategy, cpu);
            Assert.True(result.IsSuccess, result.Error?.ToString());
            foreach (var r in run)
            {
                if (--r.Refs == 0)
                {
                    held.Remove(r);
                }
            }
            return $"range freed {result.Value}";
        }
    }
}
