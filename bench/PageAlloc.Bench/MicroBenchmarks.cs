using BenchmarkDotNet.Attributes;
using PageAlloc.Domain.Allocator;
using PageAlloc.Domain.Model;

namespace PageAlloc.Bench;

/// <summary>alloc_pages + __free_pages of one order on cpu 0: pcp orders (0..3, 9) and buddy orders.</summary>
[MemoryDiagnoser]
public class AllocFreeBenchmarks
{
    private Machine _machine = null!;
    private Zone _zone = null!;

    [Params(0, 1, 3, 4, 9, 10)]
    public int Order { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _machine = new Machine(MachineConfig.Default());
        _zone = _machine.FindZone("Normal")!;
    }

    [Benchmark]
    public long AllocFree()
    {
        var block = _machine.AllocPages(_zone, Order, Gfp.Kernel, 0).Value;
        _zone.FreePages(block.Pfn, Order, 0);
        return block.Pfn;
    }
}

/// <summary>
/// alloc_pages + split_page + free_contig_range of a range of N order-0 pages, per strategy.
/// Aligned: the range is a whole split block. Unaligned: the range starts one page into a block
/// twice its size; the pages outside it are freed too (chunked), so each op frees the block whole.
/// </summary>
[MemoryDiagnoser]
public class FreeContigRangeBenchmarks
{
    private Machine _machine = null!;
    private Zone _zone = null!;

    [Params(1, 8, 64, 512, 1024)]
    public int Pages { get; set; }

    [Params(true, false)]
    public bool Aligned { get; set; }

    [Params(FreeStrategy.PerPage, FreeStrategy.Chunked, FreeStrategy.Upstream)]
    public FreeStrategy Strategy { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _machine = new Machine(MachineConfig.Default());
        _zone = _machine.FindZone("Normal")!;
    }

    [Benchmark]
    public long AllocSplitFree()
    {
        var order = PageAllocConstants.ILog2(Pages) + (Aligned ? 0 : 1);
        order = Math.Min(order, PageAllocConstants.MaxPageOrder);
        var pfn = _machine.AllocPages(_zone, order, Gfp.Kernel, 0).Value.Pfn;
        _zone.SplitPage(pfn, order);
        var blockPages = 1L << order;
        var start = Aligned || blockPages == Pages ? pfn : pfn + 1;
        var length = Math.Min(Pages, blockPages - (start - pfn));
        _zone.FreeContigRange(start, length, Strategy, 0);
        if (start > pfn)
        {
            _zone.FreeContigRange(pfn, 1, FreeStrategy.Chunked, 0);
        }
        var after = start + length;
        if (after < pfn + blockPages)
        {
            _zone.FreeContigRange(after, pfn + blockPages - after, FreeStrategy.Chunked, 0);
        }
        return pfn;
    }
}
