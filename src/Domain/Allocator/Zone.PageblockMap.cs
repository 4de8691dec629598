using PageAlloc.Domain.Model;
using static PageAlloc.Domain.Model.PageAllocConstants;

namespace PageAlloc.Domain.Allocator;

// A picture of the zone by pageblock, as tools/mm/page-types or a walk of /proc/kpageflags would
// give it: each pageblock's migratetype and how many of its pages are free in the buddy, on a pcp
// list, or HWPoison. Read without locks, for a picture, not for accounting: a block changing under
// the walk may be counted in its old or new state.
public sealed partial class Zone
{
    /// <summary>
    /// Every pageblock's state. The walk steps over whole blocks (free, pcp and allocated blocks
    /// record their order at their head), so it costs one step per block, not per page.
    /// </summary>
    public PageblockMap PageblockMap()
    {
        var count = _pageblockMt.Length;
        var free = new int[count];
        var pcp = new int[count];
        var poisoned = new int[count];
        var types = new byte[count];
        for (var b = 0; b < count; b++)
        {
            types[b] = Volatile.Read(ref _pageblockMt[b]);
        }
        var firstPfnOfBlocks = _firstPageblock << PageblockOrder;
        for (var i = 0; i < SpannedPages;)
        {
            var flags = Volatile.Read(ref Flags[i]);
            var size = 1;
            if ((flags & (byte)(PageFlags.Buddy | PageFlags.Pcp)) != 0)
            {
                size = Math.Min(1 << Math.Min((int)Order[i], MaxPageOrder), SpannedPages - i);
                Spread((flags & (byte)PageFlags.Buddy) != 0 ? free : pcp, StartPfn + i - firstPfnOfBlocks, size);
            }
            else if ((flags & (byte)PageFlags.HwPoison) != 0)
            {
                poisoned[(int)((StartPfn + i - firstPfnOfBlocks) >> PageblockOrder)]++;
            }
            else if ((flags & (byte)PageFlags.Allocated) != 0)
            {
                size = Math.Min(1 << Math.Min((int)Order[i], MaxPageOrder), SpannedPages - i);
            }
            i += size;
        }
        return new PageblockMap(Key, _firstPageblock << PageblockOrder, StartPfn, SpannedPages, types, free, pcp, poisoned);
    }

    /// <summary>Adds a block's pages to the pageblocks it spans (an order-10 block spans two).</summary>
    private static void Spread(int[] perPageblock, long offset, int size)
    {
        while (size > 0)
        {
            var block = (int)(offset >> PageblockOrder);
            var inBlock = (int)Math.Min(size, PageblockNrPages - (offset & (PageblockNrPages - 1)));
            perPageblock[block] += inBlock;
            offset += inBlock;
            size -= inBlock;
        }
    }
}

/// <summary>
/// A zone's pageblocks: the first one starts at <see cref="FirstPfn"/> (pageblock-aligned, so the
/// first and last may lie partly outside the zone); per pageblock its migratetype and its pages
/// free in the buddy, on pcp lists, and HWPoison. The rest of each pageblock is in use.
/// </summary>
public sealed record PageblockMap(
    string Zone,
    long FirstPfn,
    long ZoneStartPfn,
    long ZonePages,
    byte[] MigrateTypes,
    int[] FreePages,
    int[] PcpPages,
    int[] HwPoisonPages)
{
    public int Count => MigrateTypes.Length;
}
