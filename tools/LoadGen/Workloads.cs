using PageAlloc.Client;

namespace PageAlloc.LoadGen;

/// <summary>
/// The workloads. Each step is a short sequence of calls a kernel caller would make; every page a
/// step allocates it frees again, or keeps in the worker's live set to free later. A step runs whole
/// once started (its token is the run's abort token, not its stop token), so stopping a run never
/// leaves a block half freed.
/// </summary>
internal sealed class Worker(TimedCalls calls, LoadOptions options, Recorder recorder, int index, string machine)
{
    private const string Zone0 = "Normal";
    private readonly Random _random = new(HashCode.Combine(options.Seed, index));
    private readonly List<(string Zone, long Pfn, int Order)> _live = [];
    private int Cpu => index % options.Cpus;

    /// <summary>--zone takes a comma-separated list; workers are spread over the zones.</summary>
    private readonly string _zone = options.Zone.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) is { Length: > 0 } zones
        ? zones[index % zones.Length]
        : Zone0;

    public Recorder Recorder => recorder;

    /// <summary>The machine this worker's calls go to (--machine, or one of --machines N).</summary>
    public string Machine => machine;

    public Task Step(CancellationToken ct) => options.Workload switch
    {
        "seed" => SeedStep(ct),
        "mixed" => MixedStep(ct),
        _ => VmallocStep(ct),
    };

    private async Task<AllocPagesResponse?> Alloc(string zone, int order, string gfp, CancellationToken ct)
    {
        var block = recorder.Record("alloc_pages", await calls.Run((c, t) => c.AllocPagesAsync(machine, zone, new AllocPagesRequest { Order = order, Gfp = gfp, Cpu = Cpu }, t), ct));
        if (block is not null)
        {
            recorder.Allocated(1L << order);
        }
        return block;
    }

    private async Task FreeBlock(string zone, long pfn, int order, CancellationToken ct)
    {
        var freed = recorder.Record("free_pages", await calls.Run((c, t) => c.FreePagesAsync(machine, zone, new BlockRequest { Pfn = pfn, Order = order, Cpu = Cpu }, t), ct));
        recorder.Freed(freed is { Freed: true } ? 1L << order : 0);
    }

    /// <summary>page_alloc_high_order_test over HTTP: alloc order 9, split, free_contig_range.</summary>
    private async Task SeedStep(CancellationToken ct)
    {
        const int order = 9;
        if (await Alloc(_zone, order, "GFP_KERNEL", ct) is not { } block)
        {
            return;
        }
        if (recorder.Record("split_page", await calls.Run((c, t) => c.SplitPageAsync(machine, block.Zone, new BlockRequest { Pfn = block.Pfn, Order = order }, t), ct)) is null)
        {
            await FreeBlock(block.Zone, block.Pfn, order, ct); // still one order-9 block: give it back whole
            return;
        }
        var range = new FreeContigRangeRequest { Pfn = block.Pfn, NrPages = 1 << order, Strategy = options.Strategy, Cpu = Cpu };
        var freed = recorder.Record("free_contig_range", await calls.Run((c, t) => c.FreeContigRangeAsync(machine, block.Zone, null, range, t), ct));
        recorder.Freed(freed?.Freed ?? 0);
    }

    /// <summary>Random orders 0..3, a bounded live set, random frees.</summary>
    private async Task MixedStep(CancellationToken ct)
    {
        if (_live.Count >= options.LiveBlocks || (_live.Count > 0 && _random.Next(2) == 0))
        {
            await FreeLive(_random.Next(_live.Count), ct);
            return;
        }
        var order = _random.Next(4);
        var gfp = _random.Next(2) == 0 ? "GFP_KERNEL" : "GFP_HIGHUSER_MOVABLE";
        if (await Alloc(_zone, order, gfp, ct) is { } block)
        {
            _live.Add((block.Zone, block.Pfn, order));
        }
    }

    private async Task FreeLive(int i, CancellationToken ct)
    {
        var (zone, pfn, order) = _live[i];
        _live.RemoveAt(i);
        await FreeBlock(zone, pfn, order, ct);
    }

    /// <summary>vmalloc(N pages): largest blocks first, split; vfree: free_pages_bulk of every page.</summary>
    private async Task VmallocStep(CancellationToken ct)
    {
        var pfns = new List<long>(options.Pages);
        string? zone = null;
        var order = Math.Min(9, (int)Math.Log2(options.Pages));
        while (pfns.Count < options.Pages && order >= 0)
        {
            order = Math.Min(order, (int)Math.Log2(options.Pages - pfns.Count));
            if (await Alloc(_zone, order, "GFP_KERNEL|__GFP_NORETRY|__GFP_NOWARN", ct) is not { } block)
            {
                order--; // fall back to a smaller order, as vm_area_alloc_pages() does
                continue;
            }
            zone ??= block.Zone;
            if (block.Zone != zone)
            {
                // A block from another zone cannot join this zone's bulk free: give it back now.
                await FreeBlock(block.Zone, block.Pfn, order, ct);
                break;
            }
            if (order > 0)
            {
                recorder.Record("split_page", await calls.Run((c, t) => c.SplitPageAsync(machine, zone, new BlockRequest { Pfn = block.Pfn, Order = order }, t), ct));
            }
            for (var i = 0; i < 1 << order; i++)
            {
                pfns.Add(block.Pfn + i);
            }
        }
        if (pfns.Count > 0)
        {
            var bulk = new FreePagesBulkRequest { Pfns = pfns, Strategy = options.Strategy, Cpu = Cpu };
            var freed = recorder.Record("free_pages_bulk", await calls.Run((c, t) => c.FreePagesBulkAsync(machine, zone!, null, bulk, t), ct));
            recorder.Freed(freed?.Freed ?? 0);
        }
    }

    /// <summary>Frees what the worker still holds; called after the timed part of the run.</summary>
    public async Task Drain(CancellationToken ct)
    {
        while (_live.Count > 0 && !ct.IsCancellationRequested)
        {
            await FreeLive(_live.Count - 1, ct);
        }
    }
}
