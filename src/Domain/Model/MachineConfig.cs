namespace PageAlloc.Domain.Model;

/// <summary>
/// The simulated machine, as read from the "Machine" configuration section. Mutable so that the
/// configuration binder can fill it; <see cref="Validate"/> says what is wrong with it.
/// </summary>
public sealed class MachineConfig
{
    /// <summary>Simulated CPUs; each has a per-CPU page set in every zone.</summary>
    public int Cpus { get; set; } = 4;

    /// <summary>
    /// vm.min_free_kbytes as if written to the sysctl after boot (final); null computes the kernel's
    /// boot value: calculate_min_free_kbytes(), raised by THP's set_recommended_min_free_kbytes()
    /// when <see cref="TransparentHugepages"/> is on.
    /// </summary>
    public long? MinFreeKbytes { get; set; }

    /// <summary>
    /// Transparent hugepages enabled (/sys/kernel/mm/transparent_hugepage/enabled "always" or
    /// "madvise", most distributions' default): khugepaged raises min_free_kbytes at boot so that
    /// pageblocks stay free for huge pages. "never" is false.
    /// </summary>
    public bool TransparentHugepages { get; set; } = true;

    public List<NodeConfig> Nodes { get; set; } = [];

    /// <summary>
    /// Memory cgroups that allocations can be charged to (__GFP_ACCOUNT), each with its memory.max.
    /// Empty by default: then no page carries a charge and no per-page memcg state is kept.
    /// </summary>
    public List<MemcgConfig> Memcgs { get; set; } = [];

    /// <summary>
    /// The page cache the system reads at boot, as a machine that has run for a while holds it (none
    /// by default). See <see cref="PageCacheConfig"/>.
    /// </summary>
    public PageCacheConfig PageCache { get; set; } = new();

    /// <summary>A copy with one zone resized (to a real machine's managed pages, say); Validate() says whether it still fits.</summary>
    public MachineConfig WithZonePages(int node, string zone, long pages)
    {
        var copy = Copy();
        foreach (var z in copy.Nodes.Where(n => n.Id == node).SelectMany(n => n.Zones))
        {
            if (string.Equals(z.Name, zone, StringComparison.OrdinalIgnoreCase))
            {
                z.Pages = pages;
            }
        }
        return copy;
    }

    /// <summary>A deep copy: changing it (the configuration binder's objects are mutable) leaves this one as it is.</summary>
    public MachineConfig Copy() => new()
    {
        Cpus = Cpus,
        MinFreeKbytes = MinFreeKbytes,
        TransparentHugepages = TransparentHugepages,
        Memcgs = [.. Memcgs.Select(m => new MemcgConfig { Name = m.Name, MaxPages = m.MaxPages })],
        PageCache = new PageCacheConfig { Pages = PageCache.Pages, ActivePages = PageCache.ActivePages },
        Nodes = [.. Nodes.Select(n => new NodeConfig
        {
            Id = n.Id,
            Cpus = n.Cpus,
            Distances = n.Distances is null ? null : [.. n.Distances],
            Zones = [.. n.Zones.Select(z => new ZoneConfig { Name = z.Name, StartPfn = z.StartPfn, Pages = z.Pages })],
        })],
    };

    /// <summary>
    /// The default machine (the project's design card, docs/model.md): node 0 with DMA (pfn 1..4095; pfn 0 is reserved as on x86-64),
    /// DMA32 (pfn 4096..1048575) and Normal (pfn 1048576.., 4 GiB), 4 CPUs.
    /// The service's appsettings.json spells the same machine out, so that one value of it can be
    /// changed on its own (Machine__Nodes__0__Zones__2__Pages=...: the configuration binder cannot
    /// override an element of a list it does not have); a test keeps the two equal.
    /// </summary>
    public static MachineConfig Default() => SingleNode(
        cpus: 4,
        minFreeKbytes: null,
        new ZoneConfig { Name = "DMA", StartPfn = 1, Pages = 4095 },
        new ZoneConfig { Name = "DMA32", StartPfn = 4096, Pages = 1048576 - 4096 },
        new ZoneConfig { Name = "Normal", StartPfn = 1048576, Pages = 1048576 });

    /// <summary>A machine with one node (node 0) holding the given zones.</summary>
    public static MachineConfig SingleNode(int cpus, long? minFreeKbytes, params ZoneConfig[] zones) => new()
    {
        Cpus = cpus,
        MinFreeKbytes = minFreeKbytes,
        Nodes = [new NodeConfig { Id = 0, Zones = [.. zones] }],
    };

    /// <summary>The largest zone PageAlloc accepts: 2^31 - 1 pages (just under 8 TiB).</summary>
    public const long MaxZonePages = int.MaxValue;

    public const int MaxCpus = 1024;

    /// <summary>Memcg ids are 16 bits a page; id 0 means charged to none.</summary>
    public const int MaxMemcgs = ushort.MaxValue - 1;

    /// <summary>
    /// The page state a zone keeps per page (refcount, two list links, flags, order: see Zone, and
    /// the LRU map, allocated at the first LRU page); the pageblock array and the pcp lists add well
    /// under one byte a page.
    /// </summary>
    public const int StateBytesPerPage = 15;

    /// <summary>The memory a machine booted from this configuration holds, in bytes.</summary>
    public long StateBytes() => Nodes.SelectMany(n => n.Zones).Sum(z => Math.Max(0, z.Pages) * (StateBytesPerPage + 1L));

    /// <summary>Every problem with this configuration, in words; empty when it is usable.</summary>
    public IReadOnlyList<string> Validate()
    {
        var problems = new List<string>();
        if (Cpus is < 1 or > MaxCpus)
        {
            problems.Add($"Cpus must be 1..{MaxCpus}, not {Cpus}.");
        }
        if (MinFreeKbytes is < 0)
        {
            problems.Add($"MinFreeKbytes must not be negative, not {MinFreeKbytes}.");
        }
        if (Nodes.Count == 0)
        {
            problems.Add("At least one node is needed.");
        }
        var totalPages = Nodes.SelectMany(n => n.Zones).Sum(z => Math.Max(0, Math.Min(z.Pages, MaxZonePages)));
        if (PageCache is null || PageCache.Pages < 0 || PageCache.ActivePages < 0 || PageCache.ActivePages > PageCache.Pages || PageCache.Pages > Math.Max(totalPages, 0) * 4)
        {
            problems.Add($"PageCache: Pages must be 0..{Math.Max(totalPages, 0) * 4} (four times the machine's pages) and ActivePages 0..Pages, not {PageCache?.Pages} and {PageCache?.ActivePages}.");
        }
        var ranges = new List<(long Start, long End, string Name)>();
        var nodeIds = new HashSet<int>();
        foreach (var node in Nodes)
        {
            if (!nodeIds.Add(node.Id) || node.Id < 0)
            {
                problems.Add($"Node id {node.Id} is negative or used twice.");
            }
            var types = new HashSet<ZoneType>();
            foreach (var zone in node.Zones)
            {
                var label = $"node {node.Id} zone '{zone.Name}'";
                if (!ZoneTypes.TryParse(zone.Name, out var type))
                {
                    problems.Add($"{label}: the name must be DMA, DMA32, Normal or Movable.");
                    continue;
                }
                if (!types.Add(type))
                {
                    problems.Add($"{label}: a node has at most one zone of each type.");
                }
                if (zone.StartPfn < 0 || zone.Pages < 1 || zone.Pages > MaxZonePages)
                {
                    problems.Add($"{label}: StartPfn must be >= 0 and Pages 1..{MaxZonePages}.");
                    continue;
                }
                if (zone.StartPfn > PageAllocConstants.MaxPfn - zone.Pages)
                {
                    // Checked before any sum, so that no end overflows: a zone ends at or below 2^40, the x86-64 kernel's
                    // largest pfn with 5-level paging (MAX_PHYSMEM_BITS 52, 4 KiB pages).
                    problems.Add($"{label}: StartPfn {zone.StartPfn} with {zone.Pages} pages ends past the largest pfn, "
                        + $"{PageAllocConstants.MaxPfn - 1} (2^{PageAllocConstants.MaxPfnBits} - 1: MAX_PHYSMEM_BITS 52 on x86-64 with 5-level paging).");
                    continue;
                }
                ranges.Add((zone.StartPfn, zone.StartPfn + zone.Pages, label));
            }
        }
        var lowmemPages = Nodes.SelectMany(n => n.Zones)
            .Where(z => ZoneTypes.TryParse(z.Name, out var t) && t != ZoneType.Movable && z.Pages is >= 1 and <= MaxZonePages)
            .Sum(z => z.Pages);
        if (MinFreeKbytes is { } kbytes && lowmemPages > 0 && kbytes / PageAllocConstants.PageSizeKb >= lowmemPages)
        {
            // __setup_per_zone_wmarks() shares min_free_kbytes out as the zones' min watermarks: at
            // or above the lowmem pages, every zone's min is its whole size and no allocation succeeds.
            problems.Add($"MinFreeKbytes {kbytes} is {kbytes / PageAllocConstants.PageSizeKb} pages, at least the machine's {lowmemPages} lowmem pages: "
                + "the min watermarks would cover every page and every allocation would fail.");
        }
        if (Memcgs.Count > MaxMemcgs)
        {
            problems.Add($"At most {MaxMemcgs} memcgs, not {Memcgs.Count}.");
        }
        foreach (var memcg in Memcgs)
        {
            if (string.IsNullOrWhiteSpace(memcg.Name) || memcg.MaxPages < 0)
            {
                problems.Add($"memcg '{memcg.Name}': a name is needed and MaxPages must not be negative.");
            }
        }
        if (Memcgs.Select(m => m.Name).Distinct(StringComparer.Ordinal).Count() != Memcgs.Count)
        {
            problems.Add("memcg names must be unique.");
        }
        if (Nodes.Any(n => n.Cpus is not null))
        {
            if (Nodes.Any(n => n.Cpus is null or < 0) || Nodes.Sum(n => n.Cpus ?? 0) != Cpus)
            {
                problems.Add($"Node Cpus must be set on every node or none, each >= 0, summing to the machine's Cpus ({Cpus}).");
            }
        }
        for (var i = 0; i < Nodes.Count; i++)
        {
            if (Nodes[i].Distances is { } row && (row.Count != Nodes.Count || row.Any(d => d < 10) || row[i] != 10))
            {
                problems.Add($"node {Nodes[i].Id}: Distances must have one entry per node (in the order listed), each >= 10, and 10 for the node itself.");
            }
        }
        ranges.Sort((a, b) => a.Start.CompareTo(b.Start));
        for (var i = 1; i < ranges.Count; i++)
        {
            if (ranges[i].Start < ranges[i - 1].End)
            {
                problems.Add($"{ranges[i].Name} overlaps {ranges[i - 1].Name}.");
            }
        }
        return problems;
    }
}

public sealed class NodeConfig
{
    public int Id { get; set; }

    public List<ZoneConfig> Zones { get; set; } = [];

    /// <summary>
    /// The machine's CPUs on this node (cpumask_of_node()). Left out on every node, the CPUs are
    /// shared out in turn, node by node in the order listed; set on one node, it must be set on all,
    /// summing to the machine's Cpus. A node may have none (a memory-only node).
    /// </summary>
    public int? Cpus { get; set; }

    /// <summary>
    /// This node's row of the SLIT (node_distance() to each node, in the order the nodes are
    /// listed; 10 to itself). Left out: 10 to itself, 20 to every other node, as a firmware
    /// without a SLIT reports.
    /// </summary>
    public List<int>? Distances { get; set; }
}

public sealed class ZoneConfig
{
    /// <summary>DMA, DMA32, Normal or Movable.</summary>
    public string Name { get; set; } = "Normal";

    /// <summary>zone_start_pfn (machine-wide page frame number).</summary>
    public long StartPfn { get; set; }

    /// <summary>spanned_pages; PageAlloc has no holes, so present = managed = spanned.</summary>
    public long Pages { get; set; }
}

/// <summary>
/// The page cache a machine reads at boot (Machine:PageCache): <see cref="Pages"/> order-0 file pages
/// read through the allocator (GFP_HIGHUSER_MOVABLE readahead), the first <see cref="ActivePages"/>
/// of them refaults of the working set (the active file list), the rest on the inactive list. Past
/// what fits, kswapd reclaims the oldest as a real machine's does, so a machine that reads more than
/// it has boots with its free memory between the watermarks. Up to four times the machine's pages.
/// </summary>
public sealed class PageCacheConfig
{
    public long Pages { get; set; }

    public long ActivePages { get; set; }
}

/// <summary>A memory cgroup: its name and memory.max in pages (long.MaxValue: "max", no limit).</summary>
public sealed class MemcgConfig
{
    public string Name { get; set; } = "";

    public long MaxPages { get; set; } = long.MaxValue;
}
