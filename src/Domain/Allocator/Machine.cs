using PageAlloc.Domain.Model;
using PageAlloc.Domain.Tracing;
using static PageAlloc.Domain.Model.PageAllocConstants;

namespace PageAlloc.Domain.Allocator;

/// <summary>
/// The simulated machine: nodes with their zones, built from a <see cref="MachineConfig"/>, with
/// the boot-time tuning the kernel computes (min_free_kbytes, watermarks, lowmem reserves, pcp
/// batch and high) and the allocation entry point that walks the zonelist.
/// </summary>
public sealed partial class Machine
{
    private readonly Zone[] _zones;
    private readonly Dictionary<string, Zone> _byKey;

    /// <summary>The kmem tracepoints every zone of this machine emits (one instance may outlive the machine).</summary>
    public Tracepoints Tracepoints { get; }

    public Machine(MachineConfig config, Tracepoints? tracepoints = null)
        : this(config, tracepoints, boot: true)
    {
    }

    /// <summary>
    /// Builds the machine; with <paramref name="boot"/> off its zones are left empty (see
    /// <see cref="Zone"/>'s constructor) for a snapshot or a fork to fill.
    /// </summary>
    private Machine(MachineConfig config, Tracepoints? tracepoints, bool boot)
    {
        Tracepoints = tracepoints ?? new Tracepoints();
        var problems = config.Validate();
        if (problems.Count > 0)
        {
            throw new ArgumentException("Invalid machine configuration: " + string.Join(" ", problems), nameof(config));
        }
        _config = config.Copy();
        Cpus = config.Cpus;
        var layout = Layout(config);
        var nodeCpus = NodeCpus(config);
        var lowmemPages = layout.Where(z => z.Type != ZoneType.Movable).Sum(z => (long)z.Pages);
        MinFreeKbytes = config.MinFreeKbytes ?? BootMinFreeKbytes(layout.Select(z => (z.Node, z.Type, (long)z.Pages)).ToList(), lowmemPages, config, nodeCpus);
        var tunings = Tunings(config, MinFreeKbytes);
        _zones = layout.Select((z, index) =>
        {
            var key = z.Node == 0 ? ZoneTypes.Name(z.Type) : $"{ZoneTypes.Name(z.Type)}@{z.Node}";
            return new Zone(index, z.Node, z.Type, key, z.StartPfn, z.Pages, tunings[index], config.Cpus, Tracepoints, boot);
        }).ToArray();
        _byKey = _zones.ToDictionary(z => z.Key, StringComparer.OrdinalIgnoreCase);
        Vmscan = new Reclaim.Vmscan(_zones, Tracepoints);
        Compaction = new Reclaim.Compaction(Vmscan.Counters, Tracepoints);
        Vmscan.Compaction = Compaction;
        foreach (var zone in _zones)
        {
            zone.MigrationCounters = Vmscan.Counters;
        }
        _memcgs = [null, .. config.Memcgs.Select((m, i) => new Memcg((ushort)(i + 1), m.Name, m.MaxPages))];
        _memcgByName = Memcgs.ToDictionary(m => m.Name, StringComparer.Ordinal);
        if (config.Memcgs.Count > 0)
        {
            foreach (var zone in _zones)
            {
                zone.UseMemcgs(_memcgs);
            }
        }
        var nodeOrder = BuildNodeOrders(config, nodeCpus);
        _zonelists = new Zone[_zones.Length][][];
        for (var i = 0; i < _zones.Length; i++)
        {
            _zonelists[i] = new Zone[ZoneTypes.Count * 2][];
            for (var highest = 0; highest < ZoneTypes.Count; highest++)
            {
                _zonelists[i][highest * 2] = BuildZonelist(_zones[i], (ZoneType)highest, thisNode: false, nodeOrder[_zones[i].NodeId]);
                _zonelists[i][(highest * 2) + 1] = BuildZonelist(_zones[i], (ZoneType)highest, thisNode: true, nodeOrder[_zones[i].NodeId]);
            }
        }
        if (boot && config.PageCache.Pages > 0)
        {
            // A machine that has run for a while: its page cache read, the working set first.
            ReadFilePages(config.PageCache.ActivePages, active: true, cpu: 0);
            ReadFilePages(config.PageCache.Pages - config.PageCache.ActivePages, active: false, cpu: 0);
        }
    }

    /// <summary>The zones of a configuration in the machine's order: by node, then by zone type.</summary>
    private static List<(int Node, ZoneType Type, long StartPfn, int Pages)> Layout(MachineConfig config) =>
        config.Nodes
            .SelectMany(n => n.Zones.Select(z =>
            {
                var known = ZoneTypes.TryParse(z.Name, out var type);
                System.Diagnostics.Debug.Assert(known, "config.Validate() has refused every name that is not a zone type");
                return (Node: n.Id, Type: type, z.StartPfn, Pages: (int)z.Pages);
            }))
            .OrderBy(z => z.Node).ThenBy(z => z.Type)
            .ToList();

    /// <summary>Every zone's watermarks, lowmem_reserve and pcp tuning for a min_free_kbytes, in the machine's zone order.</summary>
    private static ZoneTuning[] Tunings(MachineConfig config, long minFreeKbytes)
    {
        var layout = Layout(config);
        var nodeCpus = NodeCpus(config);
        var lowmemPages = layout.Where(z => z.Type != ZoneType.Movable).Sum(z => (long)z.Pages);
        return [.. layout.Select(z => ComputeTuning(z.Type, z.Pages, lowmemPages, minFreeKbytes,
            layout.Where(u => u.Node == z.Node).Select(u => (u.Type, (long)u.Pages)).ToList(), SplitCpus(config, nodeCpus, z.Node)))];
    }

    /// <summary>
    /// Writing /proc/sys/vm/min_free_kbytes: min_free_kbytes_sysctl_handler() sets it (and
    /// user_min_free_kbytes, which PageAlloc keeps as the configuration's MinFreeKbytes, so that a
    /// fork or a snapshot carries it) and calls setup_per_zone_wmarks(): every zone's watermarks,
    /// then every cpu's pcp batch and high limits from them. The value is checked as a machine's
    /// configuration is (not negative, less than lowmem); on a problem nothing changes. The caller
    /// keeps page calls off the machine meanwhile, as for <see cref="Fork"/> (the service's gate).
    /// </summary>
    /// <returns>The problems with the value; none when it was set.</returns>
    public IReadOnlyList<string> SetMinFreeKbytes(long kbytes)
    {
        var next = _config.Copy();
        next.MinFreeKbytes = kbytes;
        if (next.Validate() is { Count: > 0 } problems)
        {
            return problems;
        }
        var tunings = Tunings(next, kbytes);
        _config.MinFreeKbytes = kbytes;
        MinFreeKbytes = kbytes;
        for (var i = 0; i < _zones.Length; i++)
        {
            _zones[i].SetWatermarksAndPcp(tunings[i]);
        }
        return [];
    }

    // The configuration the machine was built from, as a copy nobody else holds: a snapshot carries
    // it, and a caller changing its own object afterwards must not change what was built.
    private readonly MachineConfig _config;

    /// <summary>
    /// The configuration this machine was built from (its own, which may differ from the service's:
    /// an import boots a resized zone). A copy each time: changing it changes nothing.
    /// </summary>
    public MachineConfig Config => _config.Copy();

    /// <summary>
    /// A deep copy of this machine: every page, list (in order), counter, tuning value, lock
    /// statistic, memcg and fail_page_alloc's state with its random generator, so that the copy
    /// behaves as this machine would from here on. Arrays are copied directly (no compression):
    /// 4-6 ms for the default 8 GiB machine (bench snapshot). The copy emits to <paramref name="tracepoints"/>
    /// (or tracepoints of its own); listeners are not copied.
    /// <para>The caller keeps page calls off this machine while the fork runs (the service holds a
    /// per-machine gate), and the fork assumes it: it reads without taking the allocator's locks,
    /// which would count in the lock statistics it copies. A page call running meanwhile would give a
    /// torn copy. Readers such as <see cref="Stats"/> may run: they change only lock statistics.</para>
    /// </summary>
    public Machine Fork(Tracepoints? tracepoints = null)
    {
        var fork = new Machine(_config, tracepoints, boot: false);
        for (var i = 0; i < _zones.Length; i++)
        {
            fork._zones[i].CopyStateFrom(_zones[i]);
        }
        foreach (var memcg in Memcgs)
        {
            fork._memcgs[memcg.Id]!.Restore(memcg.UsagePages, memcg.MaxEvents);
        }
        fork.FailPageAlloc.State = FailPageAlloc.State;
        fork.Vmscan.CopyFrom(Vmscan);
        return fork;
    }

    /// <summary>A machine of this configuration whose zones are empty, for <see cref="Snapshots.MachineSnapshot.Read"/> to fill.</summary>
    internal static Machine Unbooted(MachineConfig config, Tracepoints? tracepoints) => new(config, tracepoints, boot: false);

    // Zonelists per preferred zone, highest zone type and __GFP_THISNODE, built once at boot as
    // build_zonelists() does.
    private readonly Zone[][][] _zonelists;

    // The memcgs by id; [0] is null ("charged to none").
    private readonly Memcg?[] _memcgs;

    /// <summary>The memory cgroups allocations can be charged to.</summary>
    public IEnumerable<Memcg> Memcgs => _memcgs.Skip(1).Select(m => m!);

    /// <summary>fail_page_alloc's attributes and count of injected failures (/sys/kernel/debug/fail_page_alloc/).</summary>
    public FaultInjection.FailPageAlloc FailPageAlloc { get; } = new();

    /// <summary>Finds a memcg by name.</summary>
    public Memcg? FindMemcg(string name) => _memcgByName.GetValueOrDefault(name);

    /// <summary>Whether the machine has memory cgroups at all (the service makes one per API key).</summary>
    public bool HasMemcgs => _memcgByName.Count > 0;

    private readonly Dictionary<string, Memcg> _memcgByName;

    public int Cpus { get; }

    /// <summary>vm.min_free_kbytes in force.</summary>
    public long MinFreeKbytes { get; private set; }

    /// <summary>Every populated zone, by node and then zone type.</summary>
    public IReadOnlyList<Zone> Zones => _zones;

    /// <summary>Finds a zone by its key ("Normal", "DMA32", "Normal@1"), ignoring case.</summary>
    public Zone? FindZone(string key) => _byKey.GetValueOrDefault(key);

    /// <summary>
    /// calculate_min_free_kbytes(): int_sqrt(lowmem_kbytes * 16), clamped to 128..262144.
    /// </summary>
    public static long CalculateMinFreeKbytes(long lowmemPages)
    {
        var lowmemKbytes = lowmemPages * PageSizeKb;
        var value = (long)Math.Sqrt(lowmemKbytes * 16.0);
        while (value * value > lowmemKbytes * 16)
        {
            value--;
        }
        return Math.Clamp(value, 128, 262144);
    }

    /// <summary>
    /// min_free_kbytes as the kernel ends its boot with it: calculate_min_free_kbytes(), then, with
    /// THP on, set_recommended_min_free_kbytes() (mm/khugepaged.c): two pageblocks per populated zone
    /// up to Normal (gfp_zone(GFP_USER)) plus MIGRATE_PCPTYPES² more, at most 5% of
    /// nr_free_buffer_pages() (managed pages above the high watermark of those zones, as the first
    /// value set them), when that is larger.
    /// </summary>
    private static long BootMinFreeKbytes(List<(int Node, ZoneType Type, long Pages)> zones, long lowmemPages, MachineConfig config, Dictionary<int, int> nodeCpus)
    {
        var minFreeKbytes = CalculateMinFreeKbytes(lowmemPages);
        if (!config.TransparentHugepages)
        {
            return minFreeKbytes;
        }
        var userZones = zones.Where(z => z.Type <= ZoneType.Normal && z.Pages > 0).ToList();
        long recommended = (long)PageblockNrPages * userZones.Count * 2;
        recommended += (long)PageblockNrPages * userZones.Count * MigrateTypes.PcpTypes * MigrateTypes.PcpTypes;
        var freeBuffer = userZones.Sum(z =>
        {
            var nodeZones = zones.Where(u => u.Node == z.Node).Select(u => (u.Type, u.Pages)).ToList();
            var high = ComputeTuning(z.Type, z.Pages, lowmemPages, minFreeKbytes, nodeZones, SplitCpus(config, nodeCpus, z.Node)).Watermarks.High;
            return Math.Max(z.Pages - high, 0);
        });
        recommended = Math.Min(recommended, freeBuffer / 20) << 2; // pages to kbytes (PAGE_SHIFT - 10)
        return Math.Max(recommended, minFreeKbytes);
    }

    /// <summary>
    /// __setup_per_zone_wmarks(), setup_per_zone_lowmem_reserve(), zone_batchsize() and
    /// zone_highsize() for one zone, split across the CPUs of its node.
    /// </summary>
    private static ZoneTuning ComputeTuning(
        ZoneType type, long managed, long lowmemPages, long minFreeKbytes, List<(ZoneType Type, long Managed)> nodeZones, int cpus)
    {
        var pagesMin = minFreeKbytes >> 2; // PAGE_SHIFT - 10
        var tmp = lowmemPages == 0 ? 0 : (long)((Int128)pagesMin * managed / lowmemPages); // no overflow for any accepted size
        var min = type == ZoneType.Movable ? Math.Clamp(managed / 1024, 32, 128) : tmp;
        tmp = Math.Max(tmp >> 2, managed * WatermarkScaleFactor / 10000);
        var low = min + tmp;
        var high = low + tmp;
        var watermarks = new Watermarks(min, low, high, high + tmp);

        var reserve = new long[ZoneTypes.Count];
        var ratio = ZoneTypes.LowmemReserveRatio(type);
        long upperManaged = 0;
        for (var j = (int)type + 1; j < ZoneTypes.Count; j++)
        {
            upperManaged += nodeZones.Where(z => (int)z.Type == j).Sum(z => z.Managed);
            reserve[j] = ratio == 0 || managed == 0 ? 0 : upperManaged / ratio;
        }

        // zone_batchsize()
        var batch = (int)Math.Min(managed >> 10, 1024 * 1024 / (PageSizeKb * 1024)) / 4;
        if (batch < 1)
        {
            batch = 1;
        }
        batch = Math.Max(1, (1 << ILog2(batch + (batch / 2))) - 1);

        // zone_highsize(): the low watermark (or managed/8 for high_max) split across the CPUs.
        var highMin = (int)Math.Max(low / cpus, batch << 2);
        var highMax = (int)Math.Max(managed / MinPercpuPagelistHighFraction / cpus, batch << 2);
        return new ZoneTuning(watermarks, reserve, batch, highMin, highMax);
    }

    /// <summary>
    /// alloc_pages(gfp, order) with <paramref name="zone"/> as the preferred zone:
    /// get_page_from_freelist() walks the zonelist (that zone, then lower zones of its node, then
    /// other nodes, unless __GFP_THISNODE) at the low watermark, with ALLOC_NOFRAGMENT on Normal
    /// when DMA32 exists; then the slow path retries once at the min watermark with the
    /// __GFP_HIGH / non-blocking allowances, waking kswapd and reclaiming directly
    /// (<see cref="AllocPagesSlowpath"/>; no compaction or OOM yet: see docs/model.md).
    /// </summary>
    public PageResult<AllocatedBlock> AllocPages(Zone zone, int order, GfpFlags gfp, int cpu, Memcg? memcg = null)
    {
        if ((Zone.CheckOrder(order) ?? zone.CheckCpu(cpu)) is { } error)
        {
            return error;
        }
        if (!Gfp.TryGetZone(gfp, out var gfpZone))
        {
            return GfpZoneBad(gfp);
        }
        if ((gfp & GfpFlags.Movable) != 0 && (gfp & GfpFlags.Reclaimable) != 0)
        {
            return BothMobilityBits(gfp);
        }
        // prepare_alloc_pages(): should_fail_alloc_page() fails the call before the allocator runs,
        // so no tracepoint fires and no charge is taken.
        // (The probability is read here so that the disabled case costs one load, not a call: the
        // failure's text is built out of line, which keeps this method small enough to optimise well.)
        if (FailPageAlloc.Probability != 0 && FailPageAlloc.ShouldFail(gfp, order))
        {
            return InjectedFailure(order, gfp);
        }
        var tracing = Tracepoints.Enabled;
        if (tracing)
        {
            Tracepoints.OnCpu(cpu);
        }
        var highest = (ZoneType)Math.Min((int)zone.Type, (int)gfpZone);
        // __memcg_kmem_charge_page(). The kernel takes the pages, then charges, and frees them again
        // when the charge fails; charging first ends the same way and a refused charge changes nothing.
        Memcg? charged = null;
        if (memcg is not null && (gfp & GfpFlags.Account) != 0)
        {
            if (!memcg.TryCharge(1L << order))
            {
                TraceAlloc(zone, null, order, gfp);
                return MemcgMax(memcg, order);
            }
            charged = memcg;
        }
        var mt = Gfp.MigrateTypeOf(gfp);
        var zonelist = _zonelists[zone.Index][((int)highest * 2) + ((gfp & GfpFlags.ThisNode) != 0 ? 1 : 0)];

        var alloc = (gfp & GfpFlags.KswapdReclaim) != 0 ? AllocFlags.WmarkLow | AllocFlags.Kswapd : AllocFlags.WmarkLow;
        if (zonelist.Length > 1 && zonelist[0].Type == ZoneType.Normal && zonelist[1].Type == ZoneType.Dma32 && zonelist[1].NodeId == zonelist[0].NodeId)
        {
            alloc |= AllocFlags.NoFragment; // alloc_flags_nofragment()
        }
        // The watermark check keeps lowmem_reserve[gfp_zone(gfp)] (ac->highest_zoneidx), whichever zone
        // the walk starts at: a request that could have used Normal leaves DMA32 its reserve for Normal.
        var block = GetPageFromFreelist(zonelist, order, mt, alloc, gfpZone, gfp, cpu, charged);
        if (block is null && (alloc & AllocFlags.NoFragment) != 0)
        {
            block = GetPageFromFreelist(zonelist, order, mt, alloc & ~AllocFlags.NoFragment, gfpZone, gfp, cpu, charged);
        }
        block ??= AllocPagesSlowpath(zonelist, order, mt, gfpZone, gfp, cpu, charged);
        if (tracing)
        {
            TraceAlloc(zone, block, order, gfp);
        }
        if (Vmscan.AnyWoken || (block is { Zone.BoostedWatermarkFlag: true } && (alloc & AllocFlags.Kswapd) != 0))
        {
            RunDaemons(block, cpu);
        }
        if (block is { } b)
        {
            return b;
        }
        charged?.Uncharge(1L << order);
        zone.CountAllocFailure();
        return OutOfMemory(zone, order, mt);
    }

    /// <summary>
    /// After an allocation: rmqueue()'s wake of kswapd for a zone whose boost the allocation took
    /// (ZONE_BOOSTED_WATERMARK: a balanced node would not wake it), then every daemon woken during
    /// the call runs (Reclaim/Kswapd.cs). Out of line, so that AllocPages stays small.
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private void RunDaemons(AllocatedBlock? block, int cpu)
    {
        if (block is { Zone.BoostedWatermarkFlag: true } boosted)
        {
            boosted.Zone.BoostedWatermarkFlag = false;
            Vmscan.WakeupKswapd(boosted.Zone, 0, 0, boosted.Zone.Type, cpu);
        }
        if (Vmscan.AnyWoken)
        {
            Vmscan.RunWokenKswapds(cpu);
        }
    }

    // The refusals' texts, built out of line so that AllocPages stays small enough to optimise well.
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static PageError MemcgMax(Memcg memcg, int order) => new(PageErrorKind.MemcgMax,
        $"alloc_pages: charging {1L << order} pages to memcg {memcg.Name} would pass its memory.max of {memcg.MaxPages} pages ({memcg.UsagePages} in use).");

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static PageError OutOfMemory(Zone zone, int order, MigrateType mt) => new(PageErrorKind.OutOfMemory,
        $"alloc_pages: no order-{order} {MigrateTypes.Name(mt)} block above the watermarks in zone {zone.Key} or below it.");

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static PageError GfpZoneBad(GfpFlags gfp) => new(PageErrorKind.InvalidGfp, $"gfp {Gfp.Format(gfp)} names two zone modifiers (GFP_ZONE_BAD).");

    /// <summary>
    /// alloc_contig_pages(nr_pages, gfp, nid): over the zonelist of gfp_zone(gfp) from the preferred
    /// zone, each candidate range at ALIGN(zone_start_pfn, nr_pages) and every nr_pages after it that
    /// the zone spans is tried with alloc_contig_range(); the first that succeeds is the answer.
    /// (pfn_range_valid_contig() has nothing to refuse here: no holes, reserved or hugetlb pages.)
    /// A cancelled <paramref name="cancellationToken"/> stops the scan within 1024 candidates.
    /// </summary>
    public PageResult<(Zone Zone, long Pfn)> AllocContigPages(Zone zone, long nrPages, GfpFlags gfp, CancellationToken cancellationToken = default)
    {
        if (nrPages < 1)
        {
            return new PageError(PageErrorKind.InvalidLength, $"alloc_contig_pages: nr_pages must be at least 1, not {nrPages}.");
        }
        if (!Gfp.TryGetZone(gfp, out var gfpZone))
        {
            return GfpZoneBad(gfp);
        }
        if (Zone.CheckContigGfp(gfp, "alloc_contig_pages") is { } compError)
        {
            return compError;
        }
        var highest = (ZoneType)Math.Min((int)zone.Type, (int)gfpZone);
        foreach (var z in _zonelists[zone.Index][((int)highest * 2) + ((gfp & GfpFlags.ThisNode) != 0 ? 1 : 0)])
        {
            // ALIGN(): the kernel's macro rounds up with a mask, which is exact for powers of two only.
            var pfn = (z.StartPfn + nrPages - 1) & ~(nrPages - 1);
            for (var tried = 1; pfn >= z.StartPfn && pfn + nrPages <= z.EndPfn; tried++)
            {
                if (z.AllocContigRange(pfn, nrPages, gfp).IsSuccess)
                {
                    return (z, pfn);
                }
                pfn += nrPages;
                if ((tried & 1023) == 0)
                {
                    // A small nr_pages on a big, busy zone is millions of candidates: a caller that
                    // has gone (or timed out) stops the scan.
                    cancellationToken.ThrowIfCancellationRequested();
                }
            }
        }
        return new PageError(PageErrorKind.OutOfMemory,
            $"alloc_contig_pages: no range of {nrPages} pages at a multiple of {nrPages} in zone {zone.Key} or below it is free of pinned pages (page cache would have been migrated).");
    }

    /// <summary>
    /// Departure: the kernel VM_WARNs on __GFP_MOVABLE|__GFP_RECLAIMABLE and gfp_migratetype() reads
    /// it as MIGRATE_HIGHATOMIC, a type no caller may ask for (it would index the pcp lists of
    /// another order); PageAlloc refuses the mask instead of reproducing the misuse.
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static PageError BothMobilityBits(GfpFlags gfp) => new(PageErrorKind.InvalidGfp,
        $"gfp {Gfp.Format(gfp)} sets both __GFP_MOVABLE and __GFP_RECLAIMABLE: the kernel warns and reads MIGRATE_HIGHATOMIC as the migratetype; PageAlloc refuses the mask.");

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private PageError InjectedFailure(int order, GfpFlags gfp) => new(PageErrorKind.InjectedFailure,
        $"alloc_pages: fail_page_alloc injected a failure (order {order}, gfp {Gfp.Format(gfp)}); {FailPageAlloc.Injected} injected since boot.");

    /// <summary>trace_mm_page_alloc() at the end of __alloc_pages(): the block, or a NULL page when the allocation failed.</summary>
    private void TraceAlloc(Zone preferred, AllocatedBlock? block, int order, GfpFlags gfp)
    {
        if (Tracepoints.Enabled)
        {
            Tracepoints.Emit(TraceEventType.MmPageAlloc, (block?.Zone ?? preferred).Index, block?.Pfn ?? 0, order,
                (int)Gfp.MigrateTypeOf(gfp), gfp: gfp);
        }
    }

    /// <summary>gfp_to_alloc_flags(): the min watermark, with the reserves the gfp allows.</summary>
    private static AllocFlags SlowpathAllocFlags(GfpFlags gfp, int order)
    {
        var alloc = (gfp & GfpFlags.KswapdReclaim) != 0 ? AllocFlags.WmarkMin | AllocFlags.Kswapd : AllocFlags.WmarkMin;
        if ((gfp & GfpFlags.High) != 0)
        {
            alloc |= AllocFlags.MinReserve;
        }
        if ((gfp & GfpFlags.DirectReclaim) == 0 && (gfp & GfpFlags.NoMemAlloc) == 0)
        {
            alloc |= AllocFlags.NonBlock;
            if (order > 0)
            {
                alloc |= AllocFlags.HighAtomic;
            }
        }
        return alloc;
    }

    /// <summary>unreserve_highatomic_pageblock(ac, force): the first zone of the zonelist (up to highest_zoneidx) that can give a block back.</summary>
    private static bool UnreserveHighatomicPageblock(Zone[] zonelist, ZoneType highestZoneIdx, MigrateType mt, bool force)
    {
        foreach (var zone in zonelist)
        {
            if (zone.Type <= highestZoneIdx && zone.UnreserveHighatomicPageblock(mt, force))
            {
                return true;
            }
        }
        return false;
    }

    private static AllocatedBlock? GetPageFromFreelist(
        Zone[] zonelist, int order, MigrateType mt, AllocFlags alloc, ZoneType highestZoneIdx, GfpFlags gfp, int cpu, Memcg? charged)
    {
        foreach (var z in zonelist)
        {
            if ((alloc & AllocFlags.NoFragment) != 0 && z.NodeId != zonelist[0].NodeId)
            {
                // Moving to a remote node: locality matters more than fragmentation avoidance, so the
                // caller retries the whole zonelist without ALLOC_NOFRAGMENT (the kernel's goto retry).
                return null;
            }
            if (!WatermarksAllow(z, order, alloc, highestZoneIdx))
            {
                continue;
            }
            var idx = z.Rmqueue(order, mt, alloc, cpu, out var fromPcp);
            if (idx < 0)
            {
                continue;
            }
            if (charged is not null)
            {
                z.SetMemcg(idx, charged); // before the block is referenced, so no free can see it uncharged
            }
            var compound = (gfp & GfpFlags.Comp) != 0 && order > 0;
            z.PrepNewPage(idx, order, compound); // (the highatomic reserve grows in rmqueue_buddy(), not here, since v7.1)
            return new AllocatedBlock(z, z.PfnOf(idx), order, mt, compound, fromPcp);
        }
        return null;
    }

    /// <summary>
    /// The watermark step of get_page_from_freelist(): a zone not yet flagged ZONE_BELOW_HIGH is
    /// checked against its high watermark first (passing it is enough); failing it sets the flag,
    /// which makes the pcp lists shrink on free. Then the request's own watermark, unless
    /// ALLOC_NO_WATERMARKS.
    /// </summary>
    private static bool WatermarksAllow(Zone z, int order, AllocFlags alloc, ZoneType highestZoneIdx)
    {
        if (!z.BelowHigh)
        {
            if (z.ZoneWatermarkOk(order, z.Watermarks.High, highestZoneIdx, alloc))
            {
                return true;
            }
            z.BelowHigh = true;
        }
        if ((alloc & AllocFlags.NoWatermarks) != 0 || z.ZoneWatermarkOk(order, z.Watermarks.Get(alloc), highestZoneIdx, alloc))
        {
            return true;
        }
        // zone_watermark_fast(): an order-0 request with ALLOC_MIN_RESERVE at the min watermark may
        // ignore a boost, which is only there to make kswapd reclaim sooner.
        return order == 0 && (alloc & AllocFlags.MinReserve) != 0 && (alloc & AllocFlags.WmarkMask) == AllocFlags.WmarkMin && z.WatermarkBoost != 0
            && z.ZoneWatermarkOk(0, z.BaseWatermarks.Min, highestZoneIdx, alloc);
    }

    /// <summary>
    /// One vmstat interval (sysctl_stat_interval, a second) on every cpu: refresh_cpu_vm_stats()
    /// decays each pcp's high (decay_pcp_high()). PageAlloc's time stands still between these:
    /// POST /vmstat_update runs them, and a trace replay runs one per second of the trace's clock.
    /// (The NUMA expiry of remote pagesets, drain_zone_pages(), is not modelled.) Returns the pages
    /// drained.
    /// </summary>
    public long VmstatUpdate()
    {
        long drained = 0;
        foreach (var zone in _zones)
        {
            for (var cpu = 0; cpu < Cpus; cpu++)
            {
                drained += zone.DecayPcpHigh(cpu);
            }
        }
        return drained;
    }

    /// <summary>
    /// The zonelist (build_zonelists_in_node_order()): the nodes in the preferred node's
    /// find_next_best_node() order, each node's zones from the highest down; with __GFP_THISNODE
    /// the preferred node's alone.
    /// </summary>
    private Zone[] BuildZonelist(Zone preferred, ZoneType highest, bool thisNode, List<int> order) =>
        _zones.Where(z => z.Type <= highest && (!thisNode || z.NodeId == preferred.NodeId))
            .OrderBy(z => order.IndexOf(z.NodeId))
            .ThenByDescending(z => z.Type)
            .ToArray();

    /// <summary>The zonelist an allocation preferring <paramref name="preferred"/> walks, for gfp_zone() <paramref name="highest"/>.</summary>
    internal IReadOnlyList<Zone> ZonelistOf(Zone preferred, ZoneType highest) => _zonelists[preferred.Index][(int)highest * 2];

    /// <summary>cpumask_weight(cpumask_of_node()) per node: as configured, or the CPUs shared out in turn over the nodes as listed.</summary>
    private static Dictionary<int, int> NodeCpus(MachineConfig config)
    {
        if (config.Nodes.All(n => n.Cpus is not null))
        {
            return config.Nodes.ToDictionary(n => n.Id, n => n.Cpus!.Value);
        }
        var counts = config.Nodes.ToDictionary(n => n.Id, _ => 0);
        for (var cpu = 0; cpu < config.Cpus; cpu++)
        {
            counts[config.Nodes[cpu % config.Nodes.Count].Id]++;
        }
        return counts;
    }

    /// <summary>zone_highsize()'s nr_split_cpus: the CPUs of the zone's node, or every CPU for a node without any.</summary>
    private static int SplitCpus(MachineConfig config, Dictionary<int, int> nodeCpus, int node) =>
        nodeCpus.GetValueOrDefault(node) is var n and > 0 ? n : config.Cpus;

    /// <summary>
    /// build_all_zonelists(): each node's order of fallback nodes by find_next_best_node(): the node
    /// itself, then the least node_distance(), penalised by one for a node below it and one for a
    /// node with CPUs, times MAX_NUMNODES plus node_load[] (which spreads nodes of equal distance
    /// round-robin across the nodes' zonelists, as it accumulates over the whole build).
    /// </summary>
    private static Dictionary<int, List<int>> BuildNodeOrders(MachineConfig config, Dictionary<int, int> nodeCpus)
    {
        const int maxNumNodes = 1024; // 1 << CONFIG_NODES_SHIFT of distribution kernels
        var ids = config.Nodes.Select(n => n.Id).ToList();
        int Distance(int from, int to)
        {
            var row = config.Nodes[ids.IndexOf(from)].Distances;
            return row is not null ? row[ids.IndexOf(to)] : from == to ? 10 : 20;
        }
        var nodeLoad = ids.ToDictionary(id => id, _ => 0);
        var orders = new Dictionary<int, List<int>>();
        foreach (var local in ids.Order()) // for_each_node()
        {
            var order = new List<int>();
            var prev = local;
            while (order.Count < ids.Count)
            {
                int best;
                if (!order.Contains(local))
                {
                    best = local;
                }
                else
                {
                    best = -1;
                    var minVal = int.MaxValue;
                    foreach (var n in ids.Order())
                    {
                        if (order.Contains(n))
                        {
                            continue;
                        }
                        var val = Distance(local, n) + (n < local ? 1 : 0) + (nodeCpus[n] > 0 ? 1 : 0);
                        val = (val * maxNumNodes) + nodeLoad[n];
                        if (val < minVal)
                        {
                            minVal = val;
                            best = n;
                        }
                    }
                }
                if (Distance(local, best) != Distance(local, prev))
                {
                    nodeLoad[best]++;
                }
                order.Add(best);
                prev = best;
            }
            orders[local] = order;
        }
        return orders;
    }

    /// <summary>Every zone's statistics.</summary>
    public IReadOnlyList<ZoneStats> Stats() => _zones.Select(z => z.Stats()).ToList();

    /// <summary>Every inconsistency in every zone.</summary>
    public IReadOnlyList<string> CheckInvariants()
    {
        var problems = _zones.SelectMany(z => z.CheckInvariants()).ToList();
        if (_memcgs.Length > 1)
        {
            // memory.current of each memcg is the pages charged to it in every zone.
            var charged = new long[_memcgs.Length];
            foreach (var zone in _zones)
            {
                zone.CountCharges(charged);
            }
            problems.AddRange(Memcgs.Where(m => m.UsagePages != charged[m.Id])
                .Select(m => $"memcg {m.Name}: memory.current is {m.UsagePages} pages but {charged[m.Id]} pages carry its charge"));
        }
        return problems;
    }

    /// <summary>The cpu a request runs on when it names none: the thread's processor, folded onto the simulated CPUs.</summary>
    public int CurrentCpu() => (int)((uint)Thread.GetCurrentProcessorId() % (uint)Cpus);
}

/// <summary>A successful allocation: the head pfn and how it was served (a struct: no allocation per alloc_pages).</summary>
public readonly record struct AllocatedBlock(Zone Zone, long Pfn, int Order, MigrateType MigrateType, bool Compound, bool FromPcp);
