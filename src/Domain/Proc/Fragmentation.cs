using System.Globalization;
using System.Text;
using PageAlloc.Domain.Allocator;
using PageAlloc.Domain.Model;
using static PageAlloc.Domain.Model.PageAllocConstants;

namespace PageAlloc.Domain.Proc;

/// <summary>
/// The kernel's fragmentation indices (mm/vmstat.c), in thousandths as the kernel computes them,
/// from a zone's free blocks per order (free_area[order].nr_free; pcp pages are not counted).
/// <list type="bullet">
/// <item>unusable_free_index(): the share of free memory in blocks too small for the order;
/// 1000 when nothing is free.</item>
/// <item>__fragmentation_index() (extfrag_index): -1000 when a block of the order is free (the
/// request would succeed); otherwise near 0 when it would fail for lack of memory and near 1000
/// when it would fail for fragmentation; 0 when nothing is free.</item>
/// </list>
/// </summary>
public static class Fragmentation
{
    /// <summary>contig_page_info, as fill_contig_page_info() fills it.</summary>
    private readonly record struct ContigPageInfo(long FreePages, long FreeBlocksTotal, long FreeBlocksSuitable);

    private static ContigPageInfo Fill(IReadOnlyList<long> nrFree, int suitableOrder)
    {
        long freePages = 0, total = 0, suitable = 0;
        for (var order = 0; order < NrPageOrders; order++)
        {
            var blocks = nrFree[order];
            total += blocks;
            freePages += blocks << order;
            if (order >= suitableOrder)
            {
                suitable += blocks << (order - suitableOrder);
            }
        }
        return new ContigPageInfo(freePages, total, suitable);
    }

    /// <summary>unusable_free_index(), in thousandths.</summary>
    public static int UnusableIndex(IReadOnlyList<long> nrFree, int order)
    {
        var info = Fill(nrFree, order);
        return info.FreePages == 0 ? 1000 : (int)((info.FreePages - (info.FreeBlocksSuitable << order)) * 1000 / info.FreePages);
    }

    /// <summary>__fragmentation_index() (extfrag_index), in thousandths.</summary>
    public static int ExtfragIndex(IReadOnlyList<long> nrFree, int order)
    {
        var info = Fill(nrFree, order);
        if (info.FreeBlocksTotal == 0)
        {
            return 0;
        }
        if (info.FreeBlocksSuitable != 0)
        {
            return -1000;
        }
        var requested = 1L << order;
        return (int)(1000 - ((1000 + (info.FreePages * 1000 / requested)) / info.FreeBlocksTotal));
    }

    /// <summary>unusable_index for every order 0..10, as fractions (what debugfs prints as 0.000..1.000).</summary>
    public static double[] UnusableIndices(IReadOnlyList<long> nrFree) => Fractions(nrFree, UnusableIndex);

    /// <summary>extfrag_index for every order 0..10, as fractions (-1 where a block of the order is free).</summary>
    public static double[] ExtfragIndices(IReadOnlyList<long> nrFree) => Fractions(nrFree, ExtfragIndex);

    private static double[] Fractions(IReadOnlyList<long> nrFree, Func<IReadOnlyList<long>, int, int> index) =>
        [.. Enumerable.Range(0, NrPageOrders).Select(order => index(nrFree, order) / 1000.0)];

    /// <summary>debugfs extfrag/unusable_index: unusable_show_print() for each zone.</summary>
    public static string UnusableIndexText(IReadOnlyList<ZoneStats> zones) => Text(zones, UnusableIndex);

    /// <summary>debugfs extfrag/extfrag_index: extfrag_show_print() for each zone.</summary>
    public static string ExtfragIndexText(IReadOnlyList<ZoneStats> zones) => Text(zones, ExtfragIndex);

    /// <summary>"Node %d, zone %8s " then "%d.%03d " per order (index / 1000, index % 1000), as both files print.</summary>
    private static string Text(IReadOnlyList<ZoneStats> zones, Func<IReadOnlyList<long>, int, int> index)
    {
        var sb = new StringBuilder();
        foreach (var z in zones)
        {
            sb.Append(CultureInfo.InvariantCulture, $"Node {z.Node}, zone {ZoneTypes.Name(z.Type),8} ");
            for (var order = 0; order < NrPageOrders; order++)
            {
                var i = index(z.NrFree, order);
                sb.Append(CultureInfo.InvariantCulture, $"{i / 1000}.{Math.Abs(i % 1000):D3} ");
            }
            sb.Append('\n');
        }
        return sb.ToString();
    }
}
