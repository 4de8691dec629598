using System.ComponentModel;
using System.Security.Claims;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Options;
using PageAlloc.Api.Contracts;
using PageAlloc.Api.Infrastructure;
using PageAlloc.Api.Security;
using PageAlloc.Domain.Allocator;
using PageAlloc.Domain.Model;

namespace PageAlloc.Api.Endpoints;

/// <summary>/zones: the zones, and the allocator's calls on one zone.</summary>
public static class ZonesEndpoints
{
    public static RouteGroupBuilder MapZones(this IEndpointRouteBuilder app)
    {
        var limits = app.ServiceProvider.GetRequiredService<IOptions<LimitsOptions>>().Value;
        var group = app.MapGroup("/zones").WithTags("Zones").ProducesProblem(StatusCodes.Status401Unauthorized);

        group.MapGet("/", ListZones).WithName("ListZones").WithSummary("List the zones of every node");
        group.MapGet("/{zone}", GetZone).WithName("GetZone")
            .WithSummary("One zone: watermarks, lowmem reserve, pcp high and batch per cpu")
            .AddEndpointFilterFactory(RequireKnownZone)
            .ProducesProblem(StatusCodes.Status404NotFound);

        var pages = app.MapGroup("/zones/{zone}").WithTags("Pages")
            .AddEndpointFilterFactory(RequireKnownZone)
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status401Unauthorized)
            .ProducesProblem(StatusCodes.Status403Forbidden);
        pages.MapPost("/alloc_pages", AllocPages).WithName("AllocPages")
            .WithSummary("alloc_pages(gfp, order): allocate a block, falling back to lower zones as the kernel's zonelist does")
            .ProducesProblem(StatusCodes.Status507InsufficientStorage);
        pages.MapPost("/split_page", SplitPage).WithName("SplitPage")
            .WithSummary("split_page(page, order): turn a non-compound block into order-0 pages with refcount 1")
            .ProducesProblem(StatusCodes.Status409Conflict);
        pages.MapPost("/free_contig_range", FreeContigRange).WithName("FreeContigRange")
            .WithSummary("free_contig_range(pfn, nr_pages) with the per-page, chunked or upstream strategy")
            .ProducesProblem(StatusCodes.Status409Conflict);
        pages.MapPost("/free_pages", FreePages).WithName("FreePages")
            .WithSummary("__free_pages(page, order): drop the head's reference; at zero the block is freed")
            .ProducesProblem(StatusCodes.Status409Conflict);
        pages.MapPost("/free_pages_bulk", FreePagesBulk).WithName("FreePagesBulk")
            .WithMetadata(new RequestSizeLimitAttribute(limits.BulkBodyBytes))
            .WithSummary("free_pages_bulk(pages): free order-0 pages, contiguous runs together (the vfree path)")
            .ProducesProblem(StatusCodes.Status409Conflict);
        pages.MapPost("/get_page", GetPage).WithName("GetPage")
            .WithSummary("get_page(page): take a reference").ProducesProblem(StatusCodes.Status409Conflict);
        pages.MapPost("/put_page", PutPage).WithName("PutPage")
            .WithSummary("put_page(page): drop a reference; at zero the page (or compound page) is freed")
            .ProducesProblem(StatusCodes.Status409Conflict);
        pages.MapPost("/hwpoison", HwPoison).WithName("HwPoison")
            .WithSummary("Mark an in-use order-0 page HWPoison (memory_failure()); freeing it later leaks it deliberately")
            .ProducesProblem(StatusCodes.Status409Conflict);
        pages.MapGet("/pages/{pfn}", GetPageState).WithName("GetPageState")
            .WithSummary("One page: refcount, flags, and the block that holds it (buddy, pcp or allocated)");
        pages.MapPost("/drain_pages", DrainPages).WithName("DrainPages")
            .WithSummary("drain_pages(cpu): return one cpu's (or every cpu's) pcp pages to the buddy");
        pages.MapGet("/stats", GetZoneStats).WithName("GetZoneStats")
            .WithSummary("The zone's counters: buddyinfo, pagetypeinfo, pcp, vmstat events, lock statistics");
        return group;
    }

    /// <summary>
    /// Answers 404 for a zone the machine does not have (after the body is bound, before the handler), so
    /// the handlers below can take the zone as found. (Reset boots the same zones.)
    /// </summary>
    private static EndpointFilterDelegate RequireKnownZone(EndpointFilterFactoryContext factory, EndpointFilterDelegate next)
    {
        var host = factory.ApplicationServices.GetRequiredService<MachineHost>();
        return context =>
        {
            var name = (string)context.HttpContext.Request.RouteValues["zone"]!;
            return host.Machine.FindZone(name) is null
                ? ValueTask.FromResult<object?>(Problems.UnknownZone(name, host.Machine.Zones.Select(z => z.Key)))
                : next(context);
        };
    }

    /// <summary>The zone named in the route; <see cref="RequireKnownZone"/> has checked it exists.</summary>
    private static Zone ZoneOf(MachineHost host, string name) => host.Machine.FindZone(name)!;

    private static int CpuOf(MachineHost host, int? cpu) => cpu ?? host.Machine.CurrentCpu();

    /// <summary>The memcg whose pages the caller may change; null for anyone when keys are off, and for administrators.</summary>
    private static Memcg? OwnerOf(MachineHost host, ClaimsPrincipal user) => Caller.Of(user, host.Machine).Owner;

    public static Ok<ZoneSummary[]> ListZones(MachineHost host) =>
        TypedResults.Ok(host.Machine.Stats().Select(ZoneSummary.From).ToArray());

    public static Ok<ZoneDetail> GetZone(MachineHost host, string zone)
    {
        var s = ZoneOf(host, zone).Stats();
        return TypedResults.Ok(new ZoneDetail(s.Zone, s.Node, s.StartPfn, s.SpannedPages, s.ManagedPages, s.FreePages, s.PcpPages,
            s.Watermarks, s.LowmemReserve, s.Pcp));
    }

    public static Results<CreatedJson<AllocPagesResponse>, ProblemHttpResult> AllocPages(MachineHost host, ClaimsPrincipal user, string zone, AllocPagesRequest request)
    {
        var machine = host.Machine; // one machine for the zone, the memcg and the zonelist, even across a reset
        var z = machine.FindZone(zone)!;
        var caller = Caller.Of(user, machine);
        var gfpText = request.Gfp ?? "GFP_KERNEL";
        if (!Gfp.TryParse(gfpText, out var gfp, out var unknown))
        {
            return Problems.From(new PageError(PageErrorKind.InvalidGfp,
                $"'{unknown}' is not a GFP flag. Use the kernel's names, e.g. GFP_KERNEL|__GFP_COMP."));
        }
        if (caller.Charge is not null)
        {
            gfp |= GfpFlags.Account; // a key's allocations are charged to its memcg, as a cgroup's process's are
        }
        var result = machine.AllocPages(z, request.Order!.Value, gfp, CpuOf(host, request.Cpu), caller.Charge);
        if (result.Error is { } error)
        {
            return Problems.From(error);
        }
        var b = result.Value;
        return KnownLengthJson.Created($"/zones/{b.Zone.Key}/pages/{b.Pfn}",
            new AllocPagesResponse(b.Pfn, b.Order, b.Zone.Key, b.MigrateType, b.Compound, b.FromPcp, Gfp.Format(gfp)));
    }

    public static Results<OkJson<SplitPageResponse>, ProblemHttpResult> SplitPage(MachineHost host, ClaimsPrincipal user, string zone, BlockRequest request)
    {
        var z = ZoneOf(host, zone);
        return Respond(z.SplitPage(request.Pfn!.Value, request.Order!.Value, OwnerOf(host, user)), s => new SplitPageResponse(s.Pfn, s.Order, s.Pages));
    }

    public static Results<OkJson<RangeFreeResponse>, ProblemHttpResult> FreeContigRange(
        MachineHost host, IOptions<LimitsOptions> limits, ClaimsPrincipal user, string zone, FreeContigRangeRequest request, [Description(ListChunksHelp)] bool? listChunks)
    {
        var z = ZoneOf(host, zone);
        var strategy = request.Strategy ?? FreeStrategy.Chunked;
        var chunks = new ChunkTally(listChunks == true ? limits.Value.ChunkListLimit : 0);
        var result = z.FreeContigRange(request.Pfn!.Value, request.NrPages!.Value, strategy, CpuOf(host, request.Cpu), chunks, OwnerOf(host, user));
        return Respond(result, s => RangeResponse(s, chunks, strategy, listChunks == true));
    }

    public static Results<OkJson<RangeFreeResponse>, ProblemHttpResult> FreePagesBulk(
        MachineHost host, IOptions<LimitsOptions> limits, ClaimsPrincipal user, string zone, FreePagesBulkRequest request, [Description(ListChunksHelp)] bool? listChunks)
    {
        var z = ZoneOf(host, zone);
        var strategy = request.Strategy ?? FreeStrategy.Chunked;
        var chunks = new ChunkTally(listChunks == true ? limits.Value.ChunkListLimit : 0);
        var result = z.FreePagesBulk(request.Pfns!, strategy, CpuOf(host, request.Cpu), chunks, OwnerOf(host, user));
        return Respond(result, s => RangeResponse(s, chunks, strategy, listChunks == true));
    }

    private const string ListChunksHelp = "List the chunks freed (up to the service's limit) beside their counts by order.";

    private static RangeFreeResponse RangeResponse(ContigFreeSummary s, ChunkTally chunks, FreeStrategy strategy, bool listed) =>
        new(s.Freed, s.NotFreed, s.Leaked, chunks.ByOrder, listed ? [.. chunks.Select(c => new ChunkResponse(c.Pfn, c.Order))] : null,
            chunks.Unlisted, strategy);

    public static Results<OkJson<FreePagesResponse>, ProblemHttpResult> FreePages(MachineHost host, ClaimsPrincipal user, string zone, BlockRequest request)
    {
        var z = ZoneOf(host, zone);
        var order = request.Order!.Value;
        return Respond(z.FreePages(request.Pfn!.Value, order, CpuOf(host, request.Cpu), OwnerOf(host, user)), r => new FreePagesResponse(r.Pfn, order, r.Freed, r.Refcount));
    }

    public static Results<OkJson<RefcountResponse>, ProblemHttpResult> GetPage(MachineHost host, ClaimsPrincipal user, string zone, PageRequest request) =>
        RefcountCall(host, zone, z => z.GetPage(request.Pfn!.Value, OwnerOf(host, user)));

    public static Results<OkJson<RefcountResponse>, ProblemHttpResult> PutPage(MachineHost host, ClaimsPrincipal user, string zone, PageRequest request) =>
        RefcountCall(host, zone, z => z.PutPage(request.Pfn!.Value, CpuOf(host, request.Cpu), OwnerOf(host, user)));

    public static Results<OkJson<RefcountResponse>, ProblemHttpResult> HwPoison(MachineHost host, ClaimsPrincipal user, string zone, PageRequest request) =>
        RefcountCall(host, zone, z => z.SetHwPoison(request.Pfn!.Value, OwnerOf(host, user)));

    private static Results<OkJson<RefcountResponse>, ProblemHttpResult> RefcountCall(
        MachineHost host, string zone, Func<Zone, PageResult<RefcountResult>> call) =>
        Respond(call(ZoneOf(host, zone)), r => new RefcountResponse(r.Pfn, r.Refcount, r.Freed));

    /// <summary>A domain result as a response: 200 with the mapped value, or the refusal as a problem.</summary>
    private static Results<OkJson<TResponse>, ProblemHttpResult> Respond<T, TResponse>(PageResult<T> result, Func<T, TResponse> map) =>
        result.Error is { } error ? Problems.From(error) : KnownLengthJson.Ok(map(result.Value));

    /// <summary>The pfn is decimal or 0x-prefixed hex, as the kernel prints it.</summary>
    public static Results<OkJson<PageState>, ProblemHttpResult> GetPageState(MachineHost host, string zone, string pfn)
    {
        var z = ZoneOf(host, zone);
        if (!TryParsePfn(pfn, out var value))
        {
            return Problems.BadRequest("invalid-pfn", "Invalid pfn", $"'{pfn}' is not a pfn: use decimal or 0x-prefixed hex.");
        }
        return Respond(z.GetPageState(value), state => state);
    }

    private static bool TryParsePfn(string text, out long pfn) =>
        text.StartsWith("0x", StringComparison.OrdinalIgnoreCase)
            ? long.TryParse(text.AsSpan(2), System.Globalization.NumberStyles.AllowHexSpecifier, null, out pfn) && pfn >= 0
            : long.TryParse(text, System.Globalization.NumberStyles.None, null, out pfn);

    public static Results<OkJson<DrainPagesResponse>, ProblemHttpResult> DrainPages(MachineHost host, string zone, DrainPagesRequest? request)
    {
        return Respond(ZoneOf(host, zone).DrainPages(request?.Cpu), drained => new DrainPagesResponse(drained));
    }

    public static Ok<ZoneStatsResponse> GetZoneStats(MachineHost host, string zone) =>
        TypedResults.Ok(ZoneStatsResponse.From(ZoneOf(host, zone).Stats()));
}
