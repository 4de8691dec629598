using PageAlloc.Domain.Model;
using static PageAlloc.Domain.Model.PageAllocConstants;

namespace PageAlloc.Domain.Allocator;

// free_contig_range() with the three strategies, and free_pages_bulk(), the vfree path of the
// series' patch 2/3.
public sealed partial class Zone
{
    /// <summary>
    /// free_contig_range(pfn, nr_pages): drop one reference on each order-0 page of the range and
    /// free the pages that reach zero, per <paramref name="strategy"/>. The range must be order-0
    /// pages in use; otherwise nothing changes. Chunks freed are appended to <paramref name="chunks"/>.
    /// </summary>
    public PageResult<ContigFreeSummary> FreeContigRange(
        long pfn, long nrPages, FreeStrategy strategy, int cpu, List<FreedChunk>? chunks = null)
    {
        if ((CheckRange(pfn, nrPages) ?? CheckCpu(cpu)) is { } error)
        {
            return error;
        }
        var idx = IndexOf(pfn);
        var n = (int)nrPages;
        if (strategy == FreeStrategy.PerPage)
        {
            using (RefLock.Enter())
            {
                if (CheckOrder0Range(idx, n, "free_contig_range") is { } rangeError)
                {
                    return rangeError;
                }
            }
            return FreeRangePerPage(idx, n, cpu, chunks);
        }
        return FreeRangeChunked(idx, n, strategy == FreeStrategy.Upstream, cpu, chunks, validate: true);
    }

    /// <summary>
    /// free_pages_bulk(pages, n): free an array of order-0 pages, each contiguous run of pfns
    /// through the range free (num_pages_contiguous() + __free_contig_range()). Every page is
    /// checked before any is freed; a pfn listed twice is a double free.
    /// </summary>
    public PageResult<ContigFreeSummary> FreePagesBulk(
        IReadOnlyList<long> pfns, FreeStrategy strategy, int cpu, List<FreedChunk>? chunks = null)
    {
        if (CheckCpu(cpu) is { } cpuError)
        {
            return cpuError;
        }
        if (pfns.Count == 0)
        {
            return new PageError(PageErrorKind.InvalidLength, "free_pages_bulk: the list of pfns is empty.");
        }
        foreach (var pfn in pfns)
        {
            if (CheckRange(pfn, 1) is { } error)
            {
                return error;
            }
        }
        var sorted = pfns.ToArray();
        Array.Sort(sorted);
        for (var i = 1; i < sorted.Length; i++)
        {
            if (sorted[i] == sorted[i - 1])
            {
                return new PageError(PageErrorKind.PageFree,
                    $"free_pages_bulk: pfn {Hex(sorted[i])} is listed twice; the second free would be a double free.");
            }
        }
        var runs = ContiguousRuns(pfns);
        using (RefLock.Enter())
        {
            foreach (var (start, length) in runs)
            {
                if (CheckOrder0Range(IndexOf(start), length, "free_pages_bulk") is { } error)
                {
                    return error;
                }
            }
        }
        var total = default(ContigFreeSummary);
        foreach (var (start, length) in runs)
        {
            total += strategy == FreeStrategy.PerPage
                ? FreeRangePerPage(IndexOf(start), length, cpu, chunks)
                : FreeRangeChunked(IndexOf(start), length, strategy == FreeStrategy.Upstream, cpu, chunks, validate: false).Value;
        }
        return total;
    }

    /// <summary>num_pages_contiguous() over the whole array: runs of consecutive pfns, in array order.</summary>
    private static List<(long Start, int Length)> ContiguousRuns(IReadOnlyList<long> pfns)
    {
        var runs = new List<(long, int)>();
        var start = pfns[0];
        var length = 1;
        for (var i = 1; i < pfns.Count; i++)
        {
            if (pfns[i] == start + length)
            {
                length++;
                continue;
            }
            runs.Add((start, length));
            start = pfns[i];
            length = 1;
        }
        runs.Add((start, length));
        return runs;
    }

    /// <summary>
    /// The loop before the patch: __free_page() on each page. Each drops its reference on its own
    /// (one refcount transition each) and goes through __free_frozen_pages() at order 0, so it lands
    /// on the order-0 pcp list, draining to the buddy whenever pcp->count reaches high.
    /// </summary>
    private ContigFreeSummary FreeRangePerPage(int idx, int n, int cpu, List<FreedChunk>? chunks)
    {
        long freed = 0, notFreed = 0, leaked = 0;
        for (var i = idx; i < idx + n; i++)
        {
            int remaining;
            var wasLeaked = false;
            using (RefLock.Enter())
            {
                if (RefCount[i] <= 0)
                {
                    continue; // freed by a racing caller since the range was checked
                }
                remaining = --RefCount[i];
                if (remaining == 0)
                {
                    wasLeaked = PrepareFree(i, 0, compound: false);
                }
            }
            if (remaining > 0)
            {
                notFreed++;
            }
            else if (wasLeaked)
            {
                leaked++;
            }
            else
            {
                FreeFrozenPages(i, 0, cpu);
                chunks?.Add(new FreedChunk(PfnOf(i), 0));
                freed++;
            }
        }
        return new ContigFreeSummary(freed, notFreed, leaked);
    }

    /// <summary>
    /// __free_contig_range(): drop each page's reference and run the per-page free checks
    /// (free_pages_prepare()), collecting runs of pages that reached zero and passed. A page still
    /// referenced, or one that fails the checks (HWPoison: deliberately leaked), ends the run. Each
    /// run is freed as aligned chunks (free_prepared_contig_range()). Upstream also ends a run at a
    /// memory-section boundary and lets chunks grow to MAX_PAGE_ORDER.
    /// </summary>
    private PageResult<ContigFreeSummary> FreeRangeChunked(
        int idx, int n, bool upstream, int cpu, List<FreedChunk>? chunks, bool validate)
    {
        long notFreed = 0, leaked = 0;
        List<(int Start, int Length)>? runs = null;
        using (RefLock.Enter())
        {
            if (IsPlainOrder0Range(idx, n))
            {
                // Every page drops from 1 to 0 and passes the checks: one run, done with span fills.
                RefCount.AsSpan(idx, n).Clear();
                Flags.AsSpan(idx, n).Clear();
            }
            else
            {
                if (validate && CheckOrder0Range(idx, n, "free_contig_range") is { } error)
                {
                    return error;
                }
                runs = DropReferences(idx, n, ref notFreed, ref leaked);
            }
        }
        var cap = upstream ? MaxPageOrder : PageblockOrder;
        long freed = 0;
        if (runs is null)
        {
            freed = n;
            FreeRun(idx, n, cap, upstream, cpu, chunks);
        }
        else
        {
            foreach (var (start, length) in runs)
            {
                freed += length;
                FreeRun(start, length, cap, upstream, cpu, chunks);
            }
        }
        return new ContigFreeSummary(freed, notFreed, leaked);
    }

    /// <summary>The per-page part of __free_contig_range() for a range that is not all plain pages.</summary>
    private List<(int Start, int Length)> DropReferences(int idx, int n, ref long notFreed, ref long leaked)
    {
        var runs = new List<(int, int)>();
        var runStart = -1;
        for (var i = idx; i < idx + n; i++)
        {
            var canFree = false;
            if (RefCount[i] > 0)
            {
                if (--RefCount[i] > 0)
                {
                    notFreed++;
                }
                else if (PrepareFree(i, 0, compound: false))
                {
                    leaked++;
                }
                else
                {
                    canFree = true;
                }
            }
            if (canFree && runStart < 0)
            {
                runStart = i;
            }
            else if (!canFree && runStart >= 0)
            {
                runs.Add((runStart, i - runStart));
                runStart = -1;
            }
        }
        if (runStart >= 0)
        {
            runs.Add((runStart, idx + n - runStart));
        }
        return runs;
    }

    /// <summary>Frees one run, split at memory-section boundaries for the upstream strategy.</summary>
    private void FreeRun(int idx, int n, int cap, bool splitAtSections, int cpu, List<FreedChunk>? chunks)
    {
        if (!splitAtSections)
        {
            FreePreparedContigRange(idx, n, cap, cpu, chunks);
            return;
        }
        while (n > 0)
        {
            var pfn = PfnOf(idx);
            var sectionEnd = ((pfn >> PfnSectionShift) + 1) << PfnSectionShift;
            var length = (int)Math.Min(n, sectionEnd - pfn);
            FreePreparedContigRange(idx, length, cap, cpu, chunks);
            idx += length;
            n -= length;
        }
    }

    /// <summary>
    /// free_prepared_contig_range(): the largest naturally aligned power-of-two chunk that fits,
    /// at most 2^cap pages, freed as one block with FPI_PREPARED (to the pcp for pcp orders).
    /// </summary>
    private void FreePreparedContigRange(int idx, int n, int cap, int cpu, List<FreedChunk>? chunks)
    {
        while (n > 0)
        {
            var pfn = PfnOf(idx);
            var order = Math.Min(Math.Min(AlignmentOrder(pfn), ILog2(n)), cap);
            FreeFrozenPages(idx, order, cpu);
            chunks?.Add(new FreedChunk(pfn, order));
            idx += 1 << order;
            n -= 1 << order;
        }
    }
}
