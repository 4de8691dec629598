namespace PageAlloc.LoadGen;

/// <summary>
/// The workloads. Each step is a short sequence of calls a kernel caller would make; every page a
/// step allocates it frees again, or keeps in the worker's live set to free later.
/// </summary>
internal sealed class Worker(PageAllocClient client, LoadOptions options, Recorder recorder, int index)
{
    private readonly Random _random = new(HashCode.Combine(options.Seed, index));
    private readonly List<(string Zone, long Pfn, int Order)> _live = [];
    private int Cpu => index % options.Cpus;

    /// <summary>--zone takes a comma-separated list; workers are spread over the zones.</summary>
    private readonly string _zone = options.Zone.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) is { Length: > 0 } zones
        ? zones[index % zones.Length]
        : options.Zone;

    public Task Step(CancellationToken ct) => options.Workload switch
    {
        "seed" => SeedStep(ct),
        "mixed" => MixedStep(ct),
        _ => VmallocStep(ct),
    };

    /// <summary>page_alloc_high_order_test over HTTP: alloc order 9, split, free_contig_range.</summary>
    private async Task SeedStep(CancellationToken ct)
    {
        const int order = 9;
        var alloc = recorder.Record("alloc_pages", await client.AllocPages(_zone, order, "GFP_KERNEL", Cpu, ct), 1 << order);
        if (!alloc.IsSuccess)
        {
            return;
        }
        var zone = alloc.Body!["zone"]!.GetValue<string>();
        recorder.Record("split_page", await client.SplitPage(zone, alloc.Pfn, order, ct));
        recorder.RecordFreed("free_contig_range", await client.FreeContigRange(zone, alloc.Pfn, 1 << order, options.Strategy, Cpu, ct));
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
        var alloc = recorder.Record("alloc_pages", await client.AllocPages(_zone, order, gfp, Cpu, ct), 1 << order);
        if (alloc.IsSuccess)
        {
            _live.Add((alloc.Body!["zone"]!.GetValue<string>(), alloc.Pfn, order));
        }
    }

    private async Task FreeLive(int i, CancellationToken ct)
    {
        var (zone, pfn, order) = _live[i];
        _live.RemoveAt(i);
        recorder.RecordFreed("free_pages", await client.FreePages(zone, pfn, order, Cpu, ct), 1L << order);
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
            var alloc = recorder.Record("alloc_pages", await client.AllocPages(_zone, order, "GFP_KERNEL|__GFP_NORETRY|__GFP_NOWARN", Cpu, ct), 1 << order);
            if (!alloc.IsSuccess)
            {
                order--; // fall back to a smaller order, as vm_area_alloc_pages() does
                continue;
            }
            var blockZone = alloc.Body!["zone"]!.GetValue<string>();
            zone ??= blockZone;
            if (blockZone != zone)
            {
                // A block from another zone cannot join this zone's bulk free: give it back now.
                recorder.RecordFreed("free_pages", await client.FreePages(blockZone, alloc.Pfn, order, Cpu, ct), 1L << order);
                break;
            }
            if (order > 0)
            {
                recorder.Record("split_page", await client.SplitPage(zone, alloc.Pfn, order, ct));
            }
            for (var i = 0; i < 1 << order; i++)
            {
                pfns.Add(alloc.Pfn + i);
            }
        }
        if (pfns.Count > 0)
        {
            recorder.RecordFreed("free_pages_bulk", await client.FreePagesBulk(zone!, [.. pfns], options.Strategy, Cpu, ct));
        }
    }

    /// <summary>Frees what the worker still holds; called after the timed part of the run.</summary>
    public async Task Drain(CancellationToken ct)
    {
        while (_live.Count > 0)
        {
            await FreeLive(_live.Count - 1, ct);
        }
    }
}
