using System.Globalization;
using System.Numerics;
using System.Text;
using PageAlloc.Domain.Allocator;
using PageAlloc.Domain.Model;
using static PageAlloc.Domain.Model.PageAllocConstants;

namespace PageAlloc.Domain.Proc;

/// <summary>
/// The text of /proc/buddyinfo, /proc/pagetypeinfo, /proc/zoneinfo and /proc/vmstat, in the
/// kernel's formats (mm/vmstat.c), for the fields PageAlloc models. Byte-for-byte what the
/// kernel's seq_printf() calls produce for those fields; fields PageAlloc does not model are left
/// out rather than printed as invented zeros (see docs/model.md).
/// </summary>
public static class ProcFs
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>frag_show_print(): "Node %d, zone %8s " then "%6lu " per order.</summary>
    public static string BuddyInfo(IReadOnlyList<ZoneStats> zones)
    {
        var sb = new StringBuilder();
        foreach (var z in zones)
        {
            sb.Append(Inv, $"Node {z.Node}, zone {ZoneTypes.Name(z.Type),8} ");
            foreach (var n in z.NrFree)
            {
                sb.Append(Inv, $"{n,6} ");
            }
            sb.Append('\n');
        }
        return sb.ToString();
    }

    /// <summary>pagetypeinfo_show() for each node: free blocks per type and order, then pageblocks per type.</summary>
    public static string PageTypeInfo(IReadOnlyList<ZoneStats> zones)
    {
        var sb = new StringBuilder();
        foreach (var node in zones.GroupBy(z => z.Node))
        {
            sb.Append(Inv, $"Page block order: {PageblockOrder}\n");
            sb.Append(Inv, $"Pages per block:  {PageblockNrPages}\n");
            sb.Append('\n');
            sb.Append(Inv, $"{"Free pages count per migrate type at order",-43} ");
            for (var order = 0; order < NrPageOrders; order++)
            {
                sb.Append(Inv, $"{order,6} ");
            }
            sb.Append('\n');
            foreach (var z in node)
            {
                for (var mt = 0; mt < MigrateTypes.Count; mt++)
                {
                    sb.Append(Inv, $"Node {z.Node,4}, zone {ZoneTypes.Name(z.Type),8}, type {MigrateTypes.Name((MigrateType)mt),12} ");
                    foreach (var count in z.NrFreeByType[mt])
                    {
                        // The kernel stops counting a list at 100000 entries and prints ">100000".
                        var overflow = count >= 100000;
                        sb.Append(Inv, $"{(overflow ? ">" : "")}{(overflow ? 100000 : count),6} ");
                    }
                    sb.Append('\n');
                }
            }
            sb.Append(Inv, $"\n{"Number of blocks type ",-23}");
            for (var mt = 0; mt < MigrateTypes.Count; mt++)
            {
                sb.Append(Inv, $"{MigrateTypes.Name((MigrateType)mt),12} ");
            }
            sb.Append('\n');
            foreach (var z in node)
            {
                sb.Append(Inv, $"Node {z.Node}, zone {ZoneTypes.Name(z.Type),8} ");
                foreach (var count in z.PageblocksByType)
                {
                    sb.Append(Inv, $"{count,12} ");
                }
                sb.Append('\n');
            }
        }
        return sb.ToString();
    }

    /// <summary>
    /// zoneinfo_show_print() for every zone type of every node, populated or not: the node's stats
    /// PageAlloc keeps (the LRU lists) in its first populated zone, each zone's nr_free_pages and LRU
    /// counters, and node_unreclaimable from kswapd's failures when <paramref name="vmscan"/> is
    /// given. The other zone and node counters and the NUMA counters are not modelled.
    /// </summary>
    public static string ZoneInfo(IReadOnlyList<ZoneStats> zones, int cpus, Reclaim.Vmscan? vmscan = null)
    {
        var sb = new StringBuilder();
        foreach (var node in zones.GroupBy(z => z.Node))
        {
            var perNodePrinted = false;
            for (var t = 0; t < ZoneTypes.Count; t++)
            {
                var type = (ZoneType)t;
                var z = node.FirstOrDefault(s => s.Type == type);
                sb.Append(Inv, $"Node {node.Key}, zone {ZoneTypes.Name(type),8}");
                if (z is not null && !perNodePrinted)
                {
                    // zoneinfo_show_print(): the node's stats, in its first populated zone.
                    perNodePrinted = true;
                    sb.Append("\n  per-node stats");
                    foreach (var (name, value) in NodeStats(node.ToList()))
                    {
                        sb.Append(Inv, $"\n      {name,-12} {value}");
                    }
                }
                var wm = z?.Watermarks ?? UnpopulatedWatermarks(type);
                sb.Append(Inv, $"\n  pages free     {z?.FreePages ?? 0}");
                sb.Append(Inv, $"\n        boost    {z?.WatermarkBoost ?? 0}");
                sb.Append(Inv, $"\n        min      {wm.Min}");
                sb.Append(Inv, $"\n        low      {wm.Low}");
                sb.Append(Inv, $"\n        high     {wm.High}");
                sb.Append(Inv, $"\n        promo    {wm.Promo}");
                sb.Append(Inv, $"\n        spanned  {z?.SpannedPages ?? 0}");
                sb.Append(Inv, $"\n        present  {z?.SpannedPages ?? 0}");
                sb.Append(Inv, $"\n        managed  {z?.ManagedPages ?? 0}");
                sb.Append(Inv, $"\n        cma      0");
                var reserve = z?.LowmemReserve ?? new long[ZoneTypes.Count];
                sb.Append(Inv, $"\n        protection: ({string.Join(", ", reserve)})");
                if (z is null)
                {
                    sb.Append('\n');
                    continue;
                }
                sb.Append(Inv, $"\n      {"nr_free_pages",-12} {z.FreePages}");
                for (var lru = 0; lru < LruLists.Count; lru++)
                {
                    sb.Append(Inv, $"\n      nr_zone_{LruLists.Name((LruList)lru)} {z.LruPages[lru]}");
                }
                sb.Append("\n  pagesets");
                var threshold = StatThreshold(z.ManagedPages, cpus);
                foreach (var p in z.Pcp)
                {
                    sb.Append(Inv, $"\n    cpu: {p.Cpu}");
                    sb.Append(Inv, $"\n              count:    {p.Count}");
                    sb.Append(Inv, $"\n              high:     {p.High}");
                    sb.Append(Inv, $"\n              batch:    {p.Batch}");
                    sb.Append(Inv, $"\n              high_min: {p.HighMin}");
                    sb.Append(Inv, $"\n              high_max: {p.HighMax}");
                    sb.Append(Inv, $"\n  vm stats threshold: {threshold}");
                }
                sb.Append(Inv, $"\n  node_unreclaimable:  {(vmscan?.KswapdFailures(node.Key) >= MaxReclaimRetries ? 1 : 0)}");
                sb.Append(Inv, $"\n  start_pfn:           {z.StartPfn}");
                sb.Append(Inv, $"\n  reserved_highatomic: {z.ReservedHighatomic}");
                sb.Append(Inv, $"\n  free_highatomic:     {z.FreeHighatomic}");
                sb.Append('\n');
            }
        }
        return sb.ToString();
    }

    /// <summary>
    /// vmstat_show(): "name value" lines, in the kernel's order, for the counters PageAlloc keeps:
    /// nr_free_pages, pgalloc_&lt;zone&gt; and pgfree (pages).
    /// </summary>
    public static string VmStat(IReadOnlyList<ZoneStats> zones, Reclaim.Vmscan? vmscan = null)
    {
        var sb = new StringBuilder();
        sb.Append(Inv, $"nr_free_pages {zones.Sum(z => z.FreePages)}\n");
        for (var lru = 0; lru < LruLists.Count; lru++)
        {
            sb.Append(Inv, $"nr_zone_{LruLists.Name((LruList)lru)} {zones.Sum(z => z.LruPages[lru])}\n");
        }
        foreach (var (name, value) in NodeStats(zones))
        {
            sb.Append(Inv, $"{name} {value}\n");
        }
        var reclaim = vmscan?.Counters.Read() ?? new long[Reclaim.VmscanEvents.Count];
        void Event(Reclaim.VmscanEvent e) => sb.Append(Inv, $"{Reclaim.VmscanEvents.Name(e)} {reclaim[(int)e]}\n");
        for (var t = 0; t < ZoneTypes.Count; t++)
        {
            var pages = zones.Where(z => (int)z.Type == t).Sum(z => z.Event(VmEvent.PgAlloc));
            sb.Append(Inv, $"pgalloc_{ZoneTypes.Name((ZoneType)t).ToLowerInvariant()} {pages}\n");
        }
        for (var e = Reclaim.VmscanEvent.AllocstallDma; e <= Reclaim.VmscanEvent.AllocstallMovable; e++)
        {
            Event(e);
        }
        sb.Append(Inv, $"pgfree {zones.Sum(z => z.Event(VmEvent.PgFree))}\n");
        for (var e = Reclaim.VmscanEvent.PgActivate; e < Reclaim.VmscanEvent.AllocstallDma + Reclaim.VmscanEvents.Count; e++)
        {
            Event(e); // vmstat_text's order: pgactivate .. pgrefill, pgsteal_*, pgscan_*, kswapd_*, pageoutrun, drop_*
        }
        return sb.ToString();
    }

    /// <summary>
    /// The node stats PageAlloc keeps, in node_stat_item's order: the LRU lists, then nr_anon_pages
    /// and nr_file_pages (the LRU's anon and file pages: PageAlloc has no other page cache, and no
    /// mapped, shmem or swap-cache pages).
    /// </summary>
    private static IEnumerable<(string Name, long Value)> NodeStats(IReadOnlyList<ZoneStats> zones)
    {
        for (var lru = 0; lru < LruLists.Count; lru++)
        {
            yield return ($"nr_{LruLists.Name((LruList)lru)}", zones.Sum(z => z.LruPages[lru]));
        }
        yield return ("nr_anon_pages", zones.Sum(z => z.Lru(LruList.InactiveAnon) + z.Lru(LruList.ActiveAnon)));
        yield return ("nr_file_pages", zones.Sum(z => z.Lru(LruList.InactiveFile) + z.Lru(LruList.ActiveFile)));
    }

    /// <summary>The watermarks __setup_per_zone_wmarks() gives a zone with no pages.</summary>
    private static Watermarks UnpopulatedWatermarks(ZoneType type)
    {
        var min = type == ZoneType.Movable ? 32 : 0;
        return new Watermarks(min, min, min, min);
    }

    /// <summary>calculate_normal_threshold(): the per-cpu vmstat drift threshold.</summary>
    private static int StatThreshold(long managedPages, int cpus)
    {
        static int Fls(long x) => x == 0 ? 0 : 64 - BitOperations.LeadingZeroCount((ulong)x);
        var mem = managedPages >> (27 - 12);
        return Math.Min(125, 2 * Fls(cpus) * (1 + Fls(mem)));
    }
}
