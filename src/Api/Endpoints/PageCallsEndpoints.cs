using System.ComponentModel;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Options;
using PageAlloc.Api.Contracts;
using PageAlloc.Api.Infrastructure;
using PageAlloc.Api.Machines;
using PageAlloc.Api.OpenApi;
using PageAlloc.Api.Security;
using PageAlloc.Domain.Allocator;
using PageAlloc.Domain.Model;

namespace PageAlloc.Api.Endpoints;

/// <summary>/zones/{zone}/...: the allocator's calls on one zone (alloc_pages, free_pages, split_page, free_contig_range, ...), the hot path.</summary>
public static class PageCallsEndpoints
{
    public static RouteGroupBuilder MapPageCalls(this IEndpointRouteBuilder app)
    {
        // The page calls are the hot path: validated as AddValidation would, at the cost of a predicate when valid.
        var limits = app.ServiceProvider.GetRequiredService<IOptions<LimitsOptions>>().Value;
        var pages = app.MapGroup("/zones/{zone}").WithTags("Pages")
            .WithFastValidation()
            .Refuses(UnknownZoneHelp, ProblemCatalog.UnknownZone)
            .Refuses("The request is invalid; nothing changed.", ProblemCatalog.Validation, ProblemCatalog.MalformedRequest)
            .Refuses(NoKey, ProblemCatalog.Unauthenticated)
            .Refuses("The page is charged to another API key's memory cgroup (only when API keys are configured); nothing changed.",
                ProblemCatalog.Of(PageErrorKind.NotOwner));
        pages.MapPost("/alloc_pages", AllocPages).WithName("AllocPages")
            .WithSummary("alloc_pages(gfp, order): allocate a block, falling back to lower zones as the kernel's zonelist does")
            .WithDescription("Models __alloc_pages(): get_page_from_freelist() over the zonelist of gfp_zone(gfp), starting at the zone in the path, "
                + "with the watermark check (__zone_watermark_ok()), rmqueue() from the cpu's pcp for the orders pcp_allowed_order() admits (<= PAGE_ALLOC_COSTLY_ORDER, 3, and the THP order, 9) or the buddy, "
                + "and the migratetype fallback; then the slow path's allowances (__GFP_HIGH, atomic, __GFP_MEMALLOC). The block comes back "
                + "with refcount 1 on its head (every page for __GFP_COMP's compound page). With API keys, the allocation is charged to the key's memcg.")
            .Answers(201, "The block: its first pfn (the Location header names it), order, the zone it came from (a lower one after a fallback), its migratetype, and whether the pcp served it.")
            .Refuses("The gfp mask is not the kernel's, the order is above 10, or the cpu does not exist; nothing changed.",
                ProblemCatalog.Of(PageErrorKind.InvalidGfp), ProblemCatalog.Of(PageErrorKind.InvalidOrder), ProblemCatalog.Of(PageErrorKind.InvalidCpu))
            .Refuses("With API keys, __GFP_MEMALLOC from a key that is not an administrator's.", ProblemCatalog.Forbidden)
            .Refuses("No zone of the zonelist could give the block (as the kernel would return NULL), the key's memcg is at memory.max, "
                + "or fail_page_alloc injected a failure; nothing changed.",
                ProblemCatalog.Of(PageErrorKind.OutOfMemory), ProblemCatalog.Of(PageErrorKind.MemcgMax), ProblemCatalog.Of(PageErrorKind.InjectedFailure));
        pages.MapPost("/split_page", SplitPage).WithName("SplitPage")
            .WithSummary("split_page(page, order): turn a non-compound block into order-0 pages with refcount 1")
            .WithDescription("Models split_page(): every page of an allocated, non-compound block becomes an order-0 page with its own reference, "
                + "so the block can be freed page by page or as a range (free_contig_range), as the seed's test does.")
            .Answers(200, "The block's first pfn, its former order, and the number of order-0 pages it became.")
            .Refuses("The pfn is outside the zone or not aligned to the order, or the order or cpu is out of range; nothing changed.",
                ProblemCatalog.Of(PageErrorKind.OutOfZone), ProblemCatalog.Of(PageErrorKind.Misaligned), ProblemCatalog.Of(PageErrorKind.InvalidOrder))
            .Refuses("The pages are not one allocated non-compound block of this order with refcount 1 (the kernel would VM_BUG_ON); nothing changed.",
                [.. NotLive, ProblemCatalog.Of(PageErrorKind.WrongOrder), ProblemCatalog.Of(PageErrorKind.CompoundPage)]);
        pages.MapPost("/free_contig_range", FreeContigRange).WithName("FreeContigRange")
            .WithSummary("free_contig_range(pfn, nr_pages) with the per-page, chunked or upstream strategy")
            .WithDescription("Models free_contig_range(): drops one reference on each order-0 page of the range, all or none, and frees the pages "
                + "that reach zero. per-page frees each page on its own (the kernel before the seed patch), chunked frees the largest aligned "
                + "power-of-two chunks up to a pageblock (the seed's v1 patch), upstream chunks up to MAX_PAGE_ORDER that end at memory-section "
                + "boundaries (as merged for v7.2). listChunks=true lists the chunks.")
            .Answers(200, "Pages freed, still referenced (not freed) and leaked (HWPoison); the chunks handed to the buddy, counted by order.")
            .Refuses("The range leaves the zone or is empty or too long; nothing changed.",
                ProblemCatalog.Of(PageErrorKind.OutOfZone), ProblemCatalog.Of(PageErrorKind.InvalidLength), ProblemCatalog.Of(PageErrorKind.InvalidCpu))
            .Refuses("A page of the range is not an allocated order-0 page: free (a double free), HWPoison, part of an unsplit block or of a compound page; nothing changed.",
                [.. NotLive, ProblemCatalog.Of(PageErrorKind.CompoundPage), ProblemCatalog.Of(PageErrorKind.NotSplit)]);
        pages.MapPost("/free_pages", FreePages).WithName("FreePages")
            .WithSummary("__free_pages(page, order): drop the head's reference; at zero the block is freed")
            .WithDescription("Models __free_pages(): put_page_testzero() on the head; at zero the block goes to the cpu's pcp (free_frozen_pages(), "
                + "pcp_allowed_order(): order <= 3 or the THP order 9, and the pcp has room) or to the buddy (__free_one_page(), merging with free buddies).")
            .Answers(200, "The block, whether it was freed, and the head's refcount after the call.")
            .Refuses("The pfn is outside the zone, misaligned, or the order or cpu invalid; nothing changed.",
                ProblemCatalog.Of(PageErrorKind.OutOfZone), ProblemCatalog.Of(PageErrorKind.Misaligned), ProblemCatalog.Of(PageErrorKind.InvalidOrder), ProblemCatalog.Of(PageErrorKind.InvalidCpu))
            .Refuses("The page is free (a double free), HWPoison, a tail, or was allocated with another order; nothing changed.",
                [.. NotLive, ProblemCatalog.Of(PageErrorKind.WrongOrder)]);
        pages.MapPost("/free_pages_bulk", FreePagesBulk).WithName("FreePagesBulk")
            .WithMetadata(new RequestSizeLimitAttribute(limits.BulkBodyBytes))
            .WithSummary("free_pages_bulk(pages): free order-0 pages, contiguous runs together (the vfree path)")
            .WithDescription("Models the vfree() path's bulk free: each run of contiguous pfns is freed as free_contig_range() would free it with the "
                + "strategy given; all references are dropped or none.")
            .Answers(200, "As free_contig_range: pages freed, not freed and leaked, and the chunks by order.")
            .Refuses("The list is empty or too long, a pfn is outside the zone, or the cpu is invalid; nothing changed.",
                ProblemCatalog.Of(PageErrorKind.OutOfZone), ProblemCatalog.Of(PageErrorKind.InvalidLength), ProblemCatalog.Of(PageErrorKind.InvalidCpu))
            .Refuses("A page is not an allocated order-0 page: free, HWPoison, part of an unsplit block or of a compound page; nothing changed.",
                [.. NotLive, ProblemCatalog.Of(PageErrorKind.CompoundPage), ProblemCatalog.Of(PageErrorKind.NotSplit)]);
        pages.MapPost("/alloc_contig_range", AllocContigRange).WithName("AllocContigRange")
            .WithSummary("alloc_contig_range(pfn, pfn + nr_pages, gfp): take a given range of pages (CMA, gigantic pages)")
            .WithDescription("Models alloc_contig_range(): the range's pageblocks are isolated (MIGRATE_ISOLATE), every cpu's pcp lists drained, "
                + "and when every page of the range is free it is taken out of the buddy as order-0 pages with refcount 1, which "
                + "free_contig_range frees again. A page in use makes it -EBUSY: the kernel would migrate it, PageAlloc cannot. The isolation "
                + "is undone before the answer. With API keys, only an administrator may call it (the pages are charged to no memcg).")
            .RequireMachineAdministration()
            .Answers(201, "The range: its first pfn (the Location header names it), its length and zone.")
            .Refuses("The range or its pageblocks leave the zone, nr_pages is out of range, or the gfp mask is invalid or has __GFP_COMP; nothing changed.",
                ProblemCatalog.Of(PageErrorKind.OutOfZone), ProblemCatalog.Of(PageErrorKind.InvalidLength), ProblemCatalog.Of(PageErrorKind.InvalidGfp))
            .Refuses("A page of the range is pinned (in use and not page cache), or another call has its pageblocks isolated (-EBUSY); nothing changed.", ProblemCatalog.Of(PageErrorKind.Busy))
            .Refuses("No page of the zone is left to migrate the range's page cache to (-ENOMEM); the pages already migrated stay where they went.",
                ProblemCatalog.Of(PageErrorKind.OutOfMemory))
            .Refuses(NotAdministrator, ProblemCatalog.Forbidden);
        pages.MapPost("/alloc_contig_pages", AllocContigPages).WithName("AllocContigPages")
            .WithSummary("alloc_contig_pages(nr_pages, gfp): find and take any free range of nr_pages")
            .WithDescription("Models alloc_contig_pages(): over the zonelist of gfp_zone(gfp) from this zone, tries alloc_contig_range() on each "
                + "range at ALIGN(zone_start_pfn, nr_pages) and every nr_pages after it, and answers the first that succeeds. "
                + "The scan stops after Limits:TestTimeoutSeconds (504). One scan at a time per machine (429 with Retry-After). "
                + "With API keys, only an administrator may call it.")
            .RequireMachineAdministration()
            .WithRequestTimeout(TestsEndpoints.TestTimeout)
            .EndsWhenTheServiceStops()
            .Refuses("The scan took longer than Limits:TestTimeoutSeconds and was stopped; nothing changed.", ProblemCatalog.Timeout)
            .Refuses("Another alloc_contig_pages scan is running on this machine (one at a time), or the key's request budget is spent; nothing changed.",
                ProblemCatalog.TooManyRequests)
            .Answers(201, "The range: its first pfn (the Location header names it), its length and zone.")
            .Refuses("nr_pages is out of range, or the gfp mask is invalid or has __GFP_COMP; nothing changed.",
                ProblemCatalog.Of(PageErrorKind.InvalidLength), ProblemCatalog.Of(PageErrorKind.InvalidGfp))
            .Refuses("No candidate range is free in any zone of the zonelist (page cache is migrated, pinned pages are not); nothing changed.", ProblemCatalog.Of(PageErrorKind.OutOfMemory))
            .Refuses(NotAdministrator, ProblemCatalog.Forbidden);
        pages.MapPost("/get_page", GetPage).WithName("GetPage")
            .WithSummary("get_page(page): take a reference")
            .WithDescription("Models get_page(): one more reference on an allocated page (the head's, for a tail of a compound page), so a later put_page or free does not free it.")
            .Answers(200, "The page and its refcount after the call.")
            .Refuses("The pfn is outside the zone, the cpu out of range, or the refcount would overflow; nothing changed.",
                ProblemCatalog.Of(PageErrorKind.OutOfZone), ProblemCatalog.Of(PageErrorKind.InvalidLength))
            .Refuses("The page is free, HWPoison, or a tail of a non-compound block; nothing changed.", NotLive);
        pages.MapPost("/put_page", PutPage).WithName("PutPage")
            .WithSummary("put_page(page): drop a reference; at zero the page (or compound page) is freed")
            .WithDescription("Models put_page(): drops a reference; at zero an order-0 page or a whole compound page is freed (free_frozen_pages()).")
            .Answers(200, "The page, its refcount after the call, and whether it was freed.")
            .Refuses("The pfn is outside the zone or the cpu invalid; nothing changed.", ProblemCatalog.Of(PageErrorKind.OutOfZone), ProblemCatalog.Of(PageErrorKind.InvalidCpu))
            .Refuses("The page is free, HWPoison, a tail, or the last reference of a non-compound order > 0 block (freeing it as order 0 would leak its tails); nothing changed.",
                [.. NotLive, ProblemCatalog.Of(PageErrorKind.NonCompoundPut)]);
        pages.MapPost("/hwpoison", HwPoison).WithName("HwPoison")
            .WithSummary("Mark an in-use order-0 page HWPoison (memory_failure()); freeing it later leaks it deliberately")
            .WithDescription("Sets PG_hwpoison on an allocated order-0 page, as memory_failure() does for a page with a hardware error. "
                + "The free paths then keep it out of the buddy (free_pages_prepare() refuses it, after uncharging it): range frees count it "
                + "as leaked, and it is gone until the machine reboots. With API keys, only an administrator (or a machine's owner, on its own machine) may poison a page.")
            .RequireMachineAdministration()
            .Answers(200, "The page and its refcount.")
            .Refuses(NotAdministrator, ProblemCatalog.Forbidden)
            .Refuses("The pfn is outside the zone, or the cpu out of range; nothing changed.", ProblemCatalog.Of(PageErrorKind.OutOfZone))
            .Refuses("The page is free, already HWPoison, a tail, or part of an order > 0 block; nothing changed.",
                [.. NotLive, ProblemCatalog.Of(PageErrorKind.NotSplit)]);
        pages.MapGet("/pages/{pfn}", GetPageState).WithName("GetPageState")
            .WithSummary("One page: refcount, flags, and the block that holds it (buddy, pcp or allocated)")
            .WithDescription("What the kernel's struct page and dump_page() would say: the refcount, the block holding the page (its head pfn, order and "
                + "migratetype), where that block is (buddy, pcp, allocated, frozen, hw-poison-leaked) and its flags.")
            .Answers(200, "The page.")
            .Refuses("The pfn is not a number, or outside the zone.", ProblemCatalog.InvalidPfn, ProblemCatalog.Of(PageErrorKind.OutOfZone));
        pages.MapGet("/allocations", ListAllocations).WithName("ListAllocations")
            .WithSummary("The zone's live allocations: with API keys, the caller's own")
            .WithDescription("Every block allocated and not yet freed, in pfn order, as /sys/kernel/debug/page_owner lists them: its head, order, "
                + "the head's references and whether it is a compound page. With API keys, a key sees the allocations charged to its memcg "
                + "(an administrator sees all), so a client that lost an answer (it hung up before the 201 arrived) can find its pages. "
                + $"At most `limit` (1..{MaxAllocationsListed}, default 1000) per answer; `next` is where the next answer starts (?from=).")
            .Answers(200, "The allocations, and the pfn the next page starts at.")
            .Refuses("limit is outside its range.", ProblemCatalog.Validation);
        pages.MapPost("/free_allocations", FreeAllocations).WithName("FreeAllocations")
            .WithSummary("Free every live allocation of the zone the caller owns (with API keys), or every one (without)")
            .WithDescription("Drops every reference on each block GET .../allocations lists for the caller, as __free_pages() would, until it is "
                + "freed: a client's way to give back everything it holds, including pages whose 201 it never read. Without API keys it "
                + "frees every allocation of the zone; with keys, a key's own (an administrator's: every one).")
            .Answers(200, "Blocks and pages freed, and references dropped.");
        pages.MapPost("/drain_pages", DrainPages).WithName("DrainPages")
            .WithSummary("drain_pages(cpu): return one cpu's (or every cpu's) pcp pages to the buddy")
            .WithDescription("Models drain_pages_zone() for one cpu, or drain_all_pages() for every cpu when cpu is left out: every page on the pcp lists goes "
                + "back to the buddy through free_pcppages_bulk(), merging as it goes.")
            .Answers(200, "The number of pages drained.")
            .Refuses("The cpu does not exist; nothing changed.", ProblemCatalog.Of(PageErrorKind.InvalidCpu));
        pages.MapGet("/stats", GetZoneStats).WithName("GetZoneStats")
            .WithSummary("The zone's counters: buddyinfo, pagetypeinfo, pcp, vmstat events, lock statistics")
            .WithDescription("The zone's free blocks per order (/proc/buddyinfo) and per migratetype (/proc/pagetypeinfo), pageblocks per migratetype, "
                + "the pcp of each cpu, the vmstat events the allocator counts, and lock_stat-style figures for the zone lock, the pcp locks and the refcount lock.")
            .Answers(200, "The zone's counters.");
        return pages;
    }

    private const string NotAdministrator = ZonesEndpoints.NotAdministrator;

    private const string NoKey = ZonesEndpoints.NoKey;

    private const string UnknownZoneHelp = ZonesEndpoints.UnknownZoneHelp;

    /// <summary>
    /// The refusals of a call on a page that is not the head of a live allocation (Zone.NotAllocatedHead),
    /// or that is the system's (page cache on an LRU list: Zone.LruPageRefused).
    /// </summary>
    private static readonly ProblemKind[] NotLive =
        [ProblemCatalog.Of(PageErrorKind.PageFree), ProblemCatalog.Of(PageErrorKind.HwPoisoned), ProblemCatalog.Of(PageErrorKind.NotHead),
            ProblemCatalog.Of(PageErrorKind.LruPage)];

    public static Results<CreatedJson<AllocPagesResponse>, ProblemHttpResult> AllocPages(ZoneScope scope, AllocPagesRequest request)
    {
        var machine = scope.Machine; // one machine for the zone, the memcg and the zonelist, even across a reset
        var z = scope.Zone;
        var caller = scope.Caller;
        if (!TryParseGfp(request.Gfp, out var gfp, out var invalid))
        {
            return invalid;
        }
        if (caller.Charge is not null)
        {
            gfp |= GfpFlags.Account; // a key's allocations are charged to its memcg, as a cgroup's process's are
        }
        if ((gfp & GfpFlags.MemAlloc) != 0 && caller.Owner is not null)
        {
            // The reserves below the min watermark are for the kernel's own memory-freeing paths
            // (PF_MEMALLOC); no user process can ask for them. With keys, only an administrator may.
            return Problems.Of(ProblemCatalog.Forbidden, "__GFP_MEMALLOC takes pages from the reserves below the min watermark; only an administrator's key may ask for it.");
        }
        var cpu = scope.Cpu(request.Cpu);
        var result = machine.AllocPages(z, request.Order!.Value, gfp, cpu, caller.Charge);
        if (result.Error is { } error)
        {
            scope.Hosted.OnAllocationRefused(machine, error, request.Order.Value, gfp, z);
            return Problems.From(error);
        }
        var b = result.Value;
        if (scope.ClientGone)
        {
            b.Zone.FreePages(b.Pfn, b.Order, cpu, caller.Owner);
            return Abandoned(scope, $"order-{b.Order} block at pfn {b.Pfn}");
        }
        return KnownLengthJson.Created($"{scope.PathBase}/zones/{b.Zone.Key}/pages/{b.Pfn}",
            new AllocPagesResponse(b.Pfn, b.Order, b.Zone.Key, b.MigrateType, b.Compound, b.FromPcp, Gfp.Format(gfp)));
    }

    public static Results<CreatedJson<ContigRangeResponse>, ProblemHttpResult> AllocContigRange(ZoneScope scope, AllocContigRangeRequest request)
    {
        var z = scope.Zone;
        if (!TryParseGfp(request.Gfp, out var gfp, out var invalid))
        {
            return invalid;
        }
        var result = z.AllocContigRange(request.Pfn!.Value, request.NrPages!.Value, gfp, scope.Machine.CurrentCpu());
        if (result.Error is { } error)
        {
            return Problems.From(error);
        }
        if (scope.ClientGone)
        {
            z.FreeContigRange(result.Value, request.NrPages.Value, FreeStrategy.Chunked, scope.Machine.CurrentCpu(), new ChunkTally(0));
            return Abandoned(scope, $"range of {request.NrPages.Value} pages at pfn {result.Value}");
        }
        return ContigCreated(scope, z, result.Value, request.NrPages.Value);
    }

    /// <summary>
    /// The answer to an allocation whose client hung up before it was written (Kestrel saw the
    /// connection reset or closed): its pages, which nobody would hold, were freed again, and the
    /// answer nobody reads says so (499, nginx's "client closed request", for logs and traces).
    /// A client that goes away after its answer was written cannot be told from one that read it:
    /// it finds its pages with GET .../allocations and frees them with POST .../free_allocations.
    /// </summary>
    private static ProblemHttpResult Abandoned(MachineScope scope, string what)
    {
        scope.Hosted.CountAbandonedAllocation();
        return Problems.Of(ProblemCatalog.ClientGone, $"The client hung up before this answer was written; the {what} it allocated was freed again.");
    }

    public static Results<CreatedJson<ContigRangeResponse>, ProblemHttpResult> AllocContigPages(
        ZoneScope scope, AllocContigPagesRequest request, CancellationToken cancellationToken)
    {
        var machine = scope.Machine;
        if (!TryParseGfp(request.Gfp, out var gfp, out var invalid))
        {
            return invalid;
        }
        if (!scope.Hosted.TryStartContigScan())
        {
            scope.Http.Response.Headers.RetryAfter = "1";
            return Problems.Of(ProblemCatalog.TooManyRequests,
                $"An alloc_contig_pages scan is running on machine '{scope.Hosted.Name}' already (one at a time per machine); retry after it.");
        }
        PageResult<(Zone Zone, long Pfn)> result;
        try
        {
            result = machine.AllocContigPages(scope.Zone, request.NrPages!.Value, gfp, cancellationToken);
        }
        finally
        {
            scope.Hosted.EndContigScan();
        }
        if (result.Error is { } error)
        {
            return Problems.From(error);
        }
        var (zone, pfn) = result.Value;
        if (scope.ClientGone)
        {
            zone.FreeContigRange(pfn, request.NrPages.Value, FreeStrategy.Chunked, machine.CurrentCpu(), new ChunkTally(0));
            return Abandoned(scope, $"range of {request.NrPages.Value} pages at pfn {pfn}");
        }
        return ContigCreated(scope, zone, pfn, request.NrPages.Value);
    }

    private static CreatedJson<ContigRangeResponse> ContigCreated(MachineScope scope, Zone zone, long pfn, long nrPages) =>
        KnownLengthJson.Created($"{scope.PathBase}/zones/{zone.Key}/pages/{pfn}", new ContigRangeResponse(pfn, nrPages, zone.Key));

    /// <summary>A request's gfp mask (GFP_KERNEL when left out); false with the 400 when a name is not the kernel's.</summary>
    private static bool TryParseGfp(string? text, out GfpFlags gfp, [System.Diagnostics.CodeAnalysis.NotNullWhen(false)] out ProblemHttpResult? problem)
    {
        if (Gfp.TryParse(text ?? "GFP_KERNEL", out gfp, out var unknown))
        {
            problem = null;
            return true;
        }
        problem = Problems.From(new PageError(PageErrorKind.InvalidGfp,
            $"'{unknown}' is not a GFP flag. Use the kernel's names, e.g. GFP_KERNEL|__GFP_COMP."));
        return false;
    }

    public static Results<OkJson<SplitPageResponse>, ProblemHttpResult> SplitPage(ZoneScope scope, BlockRequest request)
    {
        return Respond(scope.Zone.SplitPage(request.Pfn!.Value, request.Order!.Value, scope.Owner), s => new SplitPageResponse(s.Pfn, s.Order, s.Pages));
    }

    public static Results<OkJson<RangeFreeResponse>, ProblemHttpResult> FreeContigRange(
        ZoneScope scope, IOptions<LimitsOptions> limits, FreeContigRangeRequest request, [Description(ListChunksHelp)] bool? listChunks)
    {
        var z = scope.Zone;
        var strategy = request.Strategy ?? FreeStrategy.Chunked;
        var chunks = new ChunkTally(listChunks == true ? limits.Value.ChunkListLimit : 0);
        var result = z.FreeContigRange(request.Pfn!.Value, request.NrPages!.Value, strategy, scope.Cpu(request.Cpu), chunks, scope.Owner);
        return Respond(result, s => RangeResponse(s, chunks, strategy, listChunks == true));
    }

    public static Results<OkJson<RangeFreeResponse>, ProblemHttpResult> FreePagesBulk(
        ZoneScope scope, IOptions<LimitsOptions> limits, FreePagesBulkRequest request, [Description(ListChunksHelp)] bool? listChunks)
    {
        var z = scope.Zone;
        var strategy = request.Strategy ?? FreeStrategy.Chunked;
        var chunks = new ChunkTally(listChunks == true ? limits.Value.ChunkListLimit : 0);
        var result = z.FreePagesBulk(request.Pfns!, strategy, scope.Cpu(request.Cpu), chunks, scope.Owner);
        return Respond(result, s => RangeResponse(s, chunks, strategy, listChunks == true));
    }

    private const string ListChunksHelp = "List the chunks freed (up to the service's limit) beside their counts by order.";

    private static RangeFreeResponse RangeResponse(ContigFreeSummary s, ChunkTally chunks, FreeStrategy strategy, bool listed) =>
        new(s.Freed, s.NotFreed, s.Leaked, chunks.ByOrder, listed ? [.. chunks.Select(c => new ChunkResponse(c.Pfn, c.Order))] : null,
            chunks.Unlisted, strategy);

    public static Results<OkJson<FreePagesResponse>, ProblemHttpResult> FreePages(ZoneScope scope, BlockRequest request)
    {
        var z = scope.Zone;
        var order = request.Order!.Value;
        return Respond(z.FreePages(request.Pfn!.Value, order, scope.Cpu(request.Cpu), scope.Owner), r => new FreePagesResponse(r.Pfn, order, r.Freed, r.Refcount));
    }

    public static Results<OkJson<RefcountResponse>, ProblemHttpResult> GetPage(ZoneScope scope, PageRequest request) =>
        RefcountCall(scope.Zone.GetPage(request.Pfn!.Value, scope.Owner));

    public static Results<OkJson<RefcountResponse>, ProblemHttpResult> PutPage(ZoneScope scope, PageRequest request) =>
        RefcountCall(scope.Zone.PutPage(request.Pfn!.Value, scope.Cpu(request.Cpu), scope.Owner));

    public static Results<OkJson<RefcountResponse>, ProblemHttpResult> HwPoison(ZoneScope scope, PageRequest request) =>
        RefcountCall(scope.Zone.SetHwPoison(request.Pfn!.Value, scope.Owner));

    private static Results<OkJson<RefcountResponse>, ProblemHttpResult> RefcountCall(PageResult<RefcountResult> result) =>
        Respond(result, r => new RefcountResponse(r.Pfn, r.Refcount, r.Freed));

    /// <summary>A domain result as a response: 200 with the mapped value, or the refusal as a problem.</summary>
    private static Results<OkJson<TResponse>, ProblemHttpResult> Respond<T, TResponse>(PageResult<T> result, Func<T, TResponse> map) =>
        result.Error is { } error ? Problems.From(error) : KnownLengthJson.Ok(map(result.Value));

    public static Results<OkJson<PageState>, ProblemHttpResult> GetPageState(ZoneScope scope, Pfn pfn) =>
        Respond(scope.Zone.GetPageState(pfn.Value), state => state);

    /// <summary>The most allocations one answer of GET .../allocations lists.</summary>
    public const int MaxAllocationsListed = 10_000;

    /// <param name="from">The pfn to start from (the previous answer's next); the zone's start when left out.</param>
    /// <param name="limit">The most allocations to list, 1..10000 (default 1000).</param>
    public static Results<Ok<AllocationsResponse>, ProblemHttpResult> ListAllocations(ZoneScope scope, long? from, int? limit)
    {
        if (limit is < 1 or > MaxAllocationsListed)
        {
            return Problems.Of(ProblemCatalog.Validation, $"limit must be 1..{MaxAllocationsListed}, not {limit}.");
        }
        var found = scope.Zone.Allocations(scope.Owner, from ?? scope.Zone.StartPfn, limit ?? 1000, out var next);
        return TypedResults.Ok(new AllocationsResponse([.. found.Select(a => new AllocationResponse(a.Pfn, a.Order, a.Refcount, a.Compound))], next));
    }

    public static Ok<FreeAllocationsResponse> FreeAllocations(ZoneScope scope)
    {
        var zone = scope.Zone;
        long blocks = 0, pages = 0, references = 0;
        for (long? from = zone.StartPfn; from is { } start;)
        {
            var batch = zone.Allocations(scope.Owner, start, 4096, out from);
            foreach (var a in batch)
            {
                // Each __free_pages() drops one reference; the block is freed with the last. A racing
                // call may free it first: then this one is refused, and the loop moves on.
                for (var refs = a.Refcount; refs > 0; refs--)
                {
                    var result = zone.FreePages(a.Pfn, a.Order, scope.Cpu(null), scope.Owner);
                    if (result.Error is not null)
                    {
                        break;
                    }
                    references++;
                    if (result.Value.Freed)
                    {
                        blocks++;
                        pages += 1L << a.Order;
                        break;
                    }
                }
            }
        }
        return TypedResults.Ok(new FreeAllocationsResponse(blocks, pages, references));
    }

    public static Results<OkJson<DrainPagesResponse>, ProblemHttpResult> DrainPages(ZoneScope scope, DrainPagesRequest? request)
    {
        return Respond(scope.Zone.DrainPages(request?.Cpu), drained => new DrainPagesResponse(drained));
    }

    public static Ok<ZoneStatsResponse> GetZoneStats(ZoneScope scope) =>
        TypedResults.Ok(ZoneStatsResponse.From(scope.Zone.Stats()));
}
