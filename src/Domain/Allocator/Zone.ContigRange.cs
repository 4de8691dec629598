using System.Numerics;
using PageAlloc.Domain.Model;
using PageAlloc.Domain.Tracing;
using static PageAlloc.Domain.Model.PageAllocConstants;

namespace PageAlloc.Domain.Allocator;

// free_contig_range() with the three strategies, and free_pages_bulk(), the vfree path of the
// series' patch 2/3. Each call checks its pages and drops their references in one hold of RefLock,
// as the kernel's put_page_testzero() checks and drops in one atomic step: a racing double free
// finds the references already gone and is refused, so a page is never freed twice and never
// freed from under the client it was handed to next. The pages that reached zero belong to the
// caller alone, so they are handed to the pcp or the buddy after RefLock is released.
public sealed partial class Zone
{
    /// <summary>
    /// free_contig_range(pfn, nr_pages): drop one reference on each order-0 page of the range and
    /// free the pages that reach zero, per <paramref name="strategy"/>. The range must be order-0
    /// pages in use; otherwise nothing changes. Chunks freed are appended to <paramref name="chunks"/>.
    /// </summary>
    public PageResult<ContigFreeSummary> FreeContigRange(
        long pfn, long nrPages, FreeStrategy strategy, int cpu, ChunkTally? chunks = null, Memcg? owner = null)
    {
        var how = FreeStrategies.Of(strategy);
        if ((CheckRange(pfn, nrPages) ?? CheckCpu(cpu)) is { } error)
        {
            return error;
        }
        if (_trace.Enabled)
        {
            Tracepoints.OnCpu(cpu);
        }
        var idx = IndexOf(pfn);
        var n = (int)nrPages;
        long notFreed = 0, leaked = 0;
        List<(int Start, int Length)>? runs = null;
        using (RefLock.Enter())
        {
            if (!how.PageByPage && CheckOwner(idx, n, owner, "free_contig_range") is null
                && TryDropPlainOrder0Range(idx, n))
            {
                UnchargeRange(idx, n);
            }
            else
            {
                if ((CheckOrder0Range(idx, n, "free_contig_range") ?? CheckOwner(idx, n, owner, "free_contig_range")) is { } rangeError)
                {
                    return rangeError;
                }
                runs = [];
                DropReferences(idx, n, runs, ref notFreed, ref leaked);
            }
        }
        if (runs is null)
        {
            FreeRun(idx, n, how, cpu, chunks);
            return new ContigFreeSummary(n, 0, 0);
        }
        return new ContigFreeSummary(FreeRuns(runs, how, cpu, chunks), notFreed, leaked);
    }

    /// <summary>
    /// The common case of __free_contig_range(), in one pass: every page of the range is an order-0
    /// page with one reference, which drops to zero. All refcounts being 1 makes every page the head
    /// of an allocation, and a head of order n &gt; 0 has tails with refcount 0, so only the last page
    /// could head a larger block: reading its order and flags, and knowing no HWPoison page is in use,
    /// checks the rest. When a refcount is not 1, the pages already dropped are restored and nothing
    /// has changed; the caller then takes the page-by-page path. Caller holds RefLock.
    /// </summary>
    private bool TryDropPlainOrder0Range(int idx, int n)
    {
        var last = idx + n - 1;
        if (_hwPoisonInUse != 0 || Order[last] != 0 || (Flags[last] & (byte)PageFlags.Head) != 0)
        {
            return false;
        }
        // A zone that has had LRU pages may hold one in the range, with refcount 1 like a client's:
        // the flags say which (one vector scan of n bytes, on such zones only).
        if (_lruOf is not null && Flags.AsSpan(idx, n).IndexOfAnyExcept((byte)PageFlags.Allocated) >= 0)
        {
            return false;
        }
        var refs = RefCount.AsSpan(idx, n);
        var i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            for (; i <= n - Vector<int>.Count; i += Vector<int>.Count)
            {
                var chunk = refs.Slice(i, Vector<int>.Count);
                if (new Vector<int>(chunk) != Vector<int>.One)
                {
                    refs[..i].Fill(1);
                    return false;
                }
                Vector<int>.Zero.CopyTo(chunk);
            }
        }
        for (; i < n; i++)
        {
            if (refs[i] != 1)
            {
                refs[..i].Fill(1);
                return false;
            }
            refs[i] = 0;
        }
        Flags.AsSpan(idx, n).Clear(); // free_pages_prepare(): Allocated was the only flag
        if (_trace.Enabled)
        {
            for (var p = idx; p < idx + n; p++)
            {
                _trace.Emit(TraceEventType.MmPageFree, Index, PfnOf(p), 0, 0);
            }
        }
        return true;
    }

    /// <summary>
    /// free_pages_bulk(pages, n): free an array of order-0 pages, each contiguous run of pfns
    /// through the range free (num_pages_contiguous() + __free_contig_range()). Every page is
    /// checked before any is freed; a pfn listed twice is a double free.
    /// </summary>
    public PageResult<ContigFreeSummary> FreePagesBulk(
        IReadOnlyList<long> pfns, FreeStrategy strategy, int cpu, ChunkTally? chunks = null, Memcg? owner = null)
    {
        var how = FreeStrategies.Of(strategy);
        if (CheckCpu(cpu) is { } cpuError)
        {
            return cpuError;
        }
        if (_trace.Enabled)
        {
            Tracepoints.OnCpu(cpu);
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
        var freeable = new List<(int Start, int Length)>(runs.Count);
        long notFreed = 0, leaked = 0;
        using (RefLock.Enter())
        {
            foreach (var (start, length) in runs)
            {
                if ((CheckOrder0Range(IndexOf(start), length, "free_pages_bulk") ?? CheckOwner(IndexOf(start), length, owner, "free_pages_bulk")) is { } error)
                {
                    return error;
                }
            }
            foreach (var (start, length) in runs)
            {
                var idx = IndexOf(start);
                if (!how.PageByPage && TryDropPlainOrder0Range(idx, length))
                {
                    UnchargeRange(idx, length);
                    freeable.Add((idx, length));
                }
                else
                {
                    DropReferences(idx, length, freeable, ref notFreed, ref leaked);
                }
            }
        }
        return new ContigFreeSummary(FreeRuns(freeable, how, cpu, chunks), notFreed, leaked);
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
    /// The per-page part of __free_contig_range() (and of each __free_page() in the per-page loop):
    /// drop each page's reference and run free_pages_prepare() on those that reach zero. A page
    /// still referenced, or one that fails the checks (HWPoison: deliberately leaked), ends a run;
    /// the runs of pages that reached zero and passed are appended to <paramref name="freeable"/>.
    /// Caller holds RefLock and has checked the range.
    /// </summary>
    private void DropReferences(int idx, int n, List<(int Start, int Length)> freeable, ref long notFreed, ref long leaked)
    {
        var tracing = _trace.Enabled;
        var runStart = -1;
        for (var i = idx; i < idx + n; i++)
        {
            var canFree = false;
            if (--RefCount[i] > 0)
            {
                notFreed++;
            }
            else if (PrepareFree(i, 0, compound: false, tracing))
            {
                leaked++;
            }
            else
            {
                canFree = true;
            }
            if (canFree && runStart < 0)
            {
                runStart = i;
            }
            else if (!canFree && runStart >= 0)
            {
                freeable.Add((runStart, i - runStart));
                runStart = -1;
            }
        }
        if (runStart >= 0)
        {
            freeable.Add((runStart, idx + n - runStart));
        }
    }

    /// <summary>Frees runs of pages whose references this caller dropped to zero; returns the pages freed.</summary>
    private long FreeRuns(List<(int Start, int Length)> runs, FreeStrategyInfo how, int cpu, ChunkTally? chunks)
    {
        long freed = 0;
        foreach (var (start, length) in runs)
        {
            freed += length;
            FreeRun(start, length, how, cpu, chunks);
        }
        return freed;
    }

    /// <summary>
    /// Hands one run of frozen pages (refcount 0, checks passed) to the allocator as the strategy's
    /// row says. Page by page: the loop before the patch, __free_frozen_pages() at order 0 for each
    /// page, so each lands on the order-0 pcp list, draining to the buddy whenever pcp->count reaches
    /// high. Otherwise aligned chunks up to the row's cap, the run first cut at memory-section
    /// boundaries when the row says so.
    /// </summary>
    private void FreeRun(int idx, int n, FreeStrategyInfo how, int cpu, ChunkTally? chunks)
    {
        if (how.PageByPage)
        {
            var tracing = _trace.Enabled;
            for (var i = idx; i < idx + n; i++)
            {
                FreeFrozenPages(i, 0, cpu);
                chunks?.Add(new FreedChunk(PfnOf(i), 0));
                if (tracing)
                {
                    TraceChunk(i, 0, how);
                }
            }
        }
        else if (how.RunsEndAtSections)
        {
            FreeRunBySection(idx, n, how, cpu, chunks);
        }
        else
        {
            FreePreparedContigRange(idx, n, how, cpu, chunks);
        }
    }

    /// <summary>
    /// The upstream run: split at memory-section boundaries, each part freed as aligned chunks.
    /// On x86-64 this split never changes a chunk: the kernel makes it only where struct pages may
    /// not be contiguous across sections (without SPARSEMEM_VMEMMAP, where SECTIONS_WIDTH is not 0),
    /// and an aligned chunk of at most 2^10 pages never crosses a 2^15-page section boundary anyway.
    /// It is kept so that the strategy reads as the merged code does.
    /// </summary>
    private void FreeRunBySection(int idx, int n, FreeStrategyInfo how, int cpu, ChunkTally? chunks)
    {
        while (n > 0)
        {
            var pfn = PfnOf(idx);
            var sectionEnd = ((pfn >> PfnSectionShift) + 1) << PfnSectionShift;
            var length = (int)Math.Min(n, sectionEnd - pfn);
            FreePreparedContigRange(idx, length, how, cpu, chunks);
            idx += length;
            n -= length;
        }
    }

    /// <summary>
    /// free_prepared_contig_range(): the largest naturally aligned power-of-two chunk that fits,
    /// at most 2^cap pages, freed as one block with FPI_PREPARED (to the pcp for pcp orders).
    /// </summary>
    private void FreePreparedContigRange(int idx, int n, FreeStrategyInfo how, int cpu, ChunkTally? chunks)
    {
        while (n > 0)
        {
            var pfn = PfnOf(idx);
            var order = Math.Min(Math.Min(AlignmentOrder(pfn), ILog2(n)), how.ChunkCapOrder);
            FreeFrozenPages(idx, order, cpu);
            chunks?.Add(new FreedChunk(pfn, order));
            TraceChunk(idx, order, how);
            idx += 1 << order;
            n -= 1 << order;
        }
    }

    /// <summary>pagealloc:range_free_chunk, PageAlloc's own event: one chunk a range free hands to the allocator.</summary>
    private void TraceChunk(int idx, int order, FreeStrategyInfo how)
    {
        if (_trace.Enabled)
        {
            _trace.Emit(TraceEventType.RangeFreeChunk, Index, PfnOf(idx), order, (int)PageblockMigrateType(idx), strategy: how.Strategy);
        }
    }
}
