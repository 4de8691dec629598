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

/// <summary>/zones: the machine's zones, their pageblock maps, and importing or fragmenting one (the page calls on a zone are PageCallsEndpoints).</summary>
public static class ZonesEndpoints
{
    public static RouteGroupBuilder MapZones(this IEndpointRouteBuilder app)
    {
        var limits = app.ServiceProvider.GetRequiredService<IOptions<LimitsOptions>>().Value;
        var group = app.MapGroup("/zones").WithTags("Zones").Refuses(NoKey, ProblemCatalog.Unauthenticated);

        group.MapGet("/", ListZones).WithName("ListZones")
            .WithSummary("List the zones of every node")
            .WithDescription("Each populated zone of each node, in zonelist order (highest zone first): its pfn span, managed pages, free pages and pages on pcp lists.")
            .Answers(200, "The zones.");
        group.MapGet("/{zone}", GetZone).WithName("GetZone")
            .WithSummary("One zone: watermarks, lowmem reserve, pcp high and batch per cpu")
            .WithDescription("The zone's tuning as the kernel computes it at boot: __setup_per_zone_wmarks() (min, low, high, promo), "
                + "setup_per_zone_lowmem_reserve(), and zone_highsize()/zone_batchsize() for each cpu's pcp.")
            .Answers(200, "The zone.")
            .Refuses(UnknownZoneHelp, ProblemCatalog.UnknownZone);
        group.MapGet("/{zone}/pageblocks", GetPageblocks).WithName("GetPageblocks")
            .WithSummary("Every pageblock of a zone: its migratetype and its free, pcp and HWPoison pages, for a map")
            .WithDescription("One response for a picture of the zone (the page at / draws it): each pageblock's migratetype "
                + "(get_pageblock_migratetype()) and how many of its pages are free in the buddy, on pcp lists, or HWPoison, read "
                + "without locks as a walk of /proc/kpageflags would. Zones with more pageblocks than cells (default 4096, at most 65536) "
                + "are grouped: a cell then shows its pageblocks' most common migratetype and their summed pages.")
            .Answers(200, "The pageblocks, as arrays with one element per cell.")
            .Refuses(UnknownZoneHelp, ProblemCatalog.UnknownZone)
            .Refuses("cells is outside 1..65536.", ProblemCatalog.Validation);

        group.MapPost("/{zone}/import", ImportFreeLists).WithName("ImportFreeLists")
            .WithSummary("Start from a real machine's state: reboot, then give the zone the free lists of a /proc/pagetypeinfo (or buddyinfo)")
            .WithDescription("The body is a real machine's /proc/pagetypeinfo (or /proc/buddyinfo) as application/octet-stream; the rows of "
                + "the zone with the same name and node are used. The machine reboots and the zone gets exactly those free blocks per "
                + "migratetype and order and those pageblock types (the rest Movable); every other page is in use by the system (order-0 "
                + "pages with one reference, owned by no client). Deterministic for a seed. Afterwards /proc/buddyinfo and pagetypeinfo "
                + "print the imported numbers. With a /proc/zoneinfo in the body as well (cat /proc/zoneinfo /proc/pagetypeinfo), the "
                + "zone takes that machine's managed pages as its size, until the next reset. Counts that do not fit the zone change nothing.")
            .Accepts<string>("application/octet-stream")
            .WithMetadata(new NonJsonBody("application/octet-stream"))
            .WithMetadata(new RequestSizeLimitAttribute(limits.BulkBodyBytes))
            .RequireMachineAdministration()
            .OutsideMachineGate()
            .Answers(200, "The zone's counters after the import.")
            .Refuses(UnknownZoneHelp, ProblemCatalog.UnknownZone)
            .Refuses("The body has no rows for this zone, or a count no zone can hold (a /proc number past 2^31 - 1 pages, or past a long).", ProblemCatalog.InvalidImport)
            .Refuses("The body is past Limits:BulkBodyBytes or holds a line longer than Limits:BodyLineBytes; it was not read further.", ProblemCatalog.BodyTooLarge)
            .Refuses("The counts do not fit the zone: too many pages or pageblocks, or blocks of a type that cannot be placed without merging; nothing changed. "
                + "Without a /proc/zoneinfo in the body, the detail says how to send one (cat /proc/zoneinfo /proc/pagetypeinfo | curl ... --data-binary @-).",
                ProblemCatalog.Of(PageErrorKind.ImportDoesNotFit))
            .Refuses(NotAdministrator, ProblemCatalog.Forbidden);

        group.MapPost("/{zone}/fragment", Fragment).WithName("FragmentZone")
            .WithSummary("The synthetic fragmenter: reboot, then give the zone a target of free pages and unusable_index at one order")
            .WithDescription("For experiments: the machine reboots and the zone gets free lists with freePages free pages, of which the share "
                + "unusableIndex is in blocks smaller than order (unusable_free_index() of mm/vmstat.c), the rest in the largest blocks "
                + "that fit; all Movable, the rest of the zone in use by the system. Deterministic for a seed.")
            .RequireMachineAdministration()
            .OutsideMachineGate()
            .Answers(200, "The zone's counters after the fragmenting, its unusableIndex at the order on target.")
            .Refuses(UnknownZoneHelp, ProblemCatalog.UnknownZone)
            .Refuses("A value is missing or out of range (the order alone: invalid-order).", ProblemCatalog.Validation, ProblemCatalog.MalformedRequest)
            .Refuses("The target does not fit the zone; nothing changed.", ProblemCatalog.Of(PageErrorKind.ImportDoesNotFit))
            .Refuses(NotAdministrator, ProblemCatalog.Forbidden);
        return group;
    }

    internal const string NotAdministrator = MachineEndpoints.NotAdministrator;

    internal const string NoKey = "API keys are configured and the request has none, or an unknown one.";

    internal const string UnknownZoneHelp = "The zone is not one of the machine's (GET /zones lists them).";

    public static Ok<ZoneSummary[]> ListZones(MachineScope scope) =>
        TypedResults.Ok(scope.Machine.Stats().Select(ZoneSummary.From).ToArray());

    public static Ok<ZoneDetail> GetZone(ZoneScope scope)
    {
        var s = scope.Zone.Stats();
        return TypedResults.Ok(new ZoneDetail(s.Zone, s.Node, s.StartPfn, s.SpannedPages, s.ManagedPages, s.FreePages, s.PcpPages,
            s.Watermarks, s.LowmemReserve, s.Pcp));
    }

    public static async Task<Results<Ok<ZoneStatsResponse>, ProblemHttpResult>> ImportFreeLists(
        ZoneScope scope, Cluster.ClusterMachines cluster, IOptions<LimitsOptions> limits, HttpRequest request,
        [Description("Seed of the layout (default 1).")] int? seed, CancellationToken cancellationToken)
    {
        // Read a line at a time, none longer than Limits:BodyLineBytes; the whole is bounded by the body's size limit.
        var l = limits.Value;
        var text = new System.Text.StringBuilder();
        using (var reader = new PageAlloc.Domain.Replay.BoundedLineReader(request.Body, new PageAlloc.Domain.Replay.TextBounds(
            l.BulkBodyBytes, l.BodyLineBytes, $"Limits:{nameof(LimitsOptions.BulkBodyBytes)}", $"Limits:{nameof(LimitsOptions.BodyLineBytes)}")))
        {
            try
            {
                while (await reader.ReadLineAsync(cancellationToken) is { } line)
                {
                    text.Append(line).Append('\n');
                }
            }
            catch (PageAlloc.Domain.Replay.TextTooLargeException tooLarge)
            {
                return Problems.Of(ProblemCatalog.BodyTooLarge, $"The body: {tooLarge.Message}");
            }
        }
        var target = scope.Zone;
        var key = target.Key;
        PageAlloc.Domain.Import.FreeListCounts? counts;
        long? managed;
        try
        {
            counts = PageAlloc.Domain.Import.FreeListCounts.Parse(text.ToString(), ZoneTypes.Name(target.Type), target.NodeId);
            managed = PageAlloc.Domain.Import.ZoneInfoSize.ManagedPages(text.ToString(), ZoneTypes.Name(target.Type), target.NodeId);
        }
        catch (PageAlloc.Domain.Import.InvalidImportException invalid)
        {
            return Problems.Of(ProblemCatalog.InvalidImport, invalid.Message);
        }
        if (counts is null)
        {
            return Problems.Of(ProblemCatalog.InvalidImport, $"The body has no /proc/pagetypeinfo or /proc/buddyinfo rows for zone {ZoneTypes.Name(target.Type)} of node {target.NodeId}.");
        }
        // With a /proc/zoneinfo in the body too, the zone takes that machine's managed pages as its size (until the next reset).
        MachineConfig? sized = null;
        if (managed is not null)
        {
            sized = scope.Hosted.Config.WithZonePages(target.NodeId, ZoneTypes.Name(target.Type), managed.Value);
            if (new MachineConfigValidation().Validate(null, sized) is { Failed: true } invalid)
            {
                return Problems.From(new PageError(PageErrorKind.ImportDoesNotFit,
                    $"import: zone {key} cannot take the zoneinfo's {managed} managed pages: {string.Join(" ", invalid.Failures ?? [])}"));
            }
        }
        // Without one, a real machine's zone larger than the configured one does not fit: say how to send it.
        var hint = sized is not null ? null
            : $"The body has no /proc/zoneinfo rows for zone {ZoneTypes.Name(target.Type)} of node {target.NodeId}, so the zone has the size the service "
                + $"is configured with. With the machine's /proc/zoneinfo in the same body, the zone takes its "
                + $"managed pages as its size; send both with: sudo cat /proc/zoneinfo /proc/pagetypeinfo | curl -X POST '{Microsoft.AspNetCore.Http.Extensions.UriHelper.GetEncodedUrl(request)}' "
                + "-H 'Content-Type: application/octet-stream' --data-binary @-";
        return await RebootWithFreeLists(scope.Hosted, cluster, key, counts, seed ?? 1, sized, hint);
    }

    /// <summary>
    /// Reboots with the zone given these free lists (Zone.ImportFreeLists), and answers its counters;
    /// refused, nothing changes, and a refusal for counts that do not fit ends with <paramref name="doesNotFitHint"/>.
    /// </summary>
    private static async Task<Results<Ok<ZoneStatsResponse>, ProblemHttpResult>> RebootWithFreeLists(
        HostedMachine hosted, Cluster.ClusterMachines cluster, string key, PageAlloc.Domain.Import.FreeListCounts counts, int seed, MachineConfig? config = null, string? doesNotFitHint = null,
        bool pageCache = false)
    {
        // A machine that grows asks the cluster's budget first (the catalog, a grain call: not under the
        // machine's boot lock); the boot then takes what it needs of that, and what it did not use
        // (a failed import, or a racing import that resized it first) is given back after.
        var wanted = (config ?? hosted.Config).StateBytes() - hosted.StateBytes;
        long reserved = 0;
        if (wanted > 0)
        {
            if (await cluster.Resize(hosted.Name, wanted) is { } refused)
            {
                return Problems.From(WithHint(new PageError(PageErrorKind.ImportDoesNotFit, "import: " + refused), doesNotFitHint));
            }
            reserved = wanted;
        }
        long used = 0;
        Zone? imported = null;
        var error = hosted.ResetWith(machine =>
        {
            imported = machine.FindZone(key)!;
            return imported.ImportFreeLists(counts, seed, pageCache);
        }, config, delta =>
        {
            if (delta > reserved - used)
            {
                return new PageError(PageErrorKind.ImportDoesNotFit, $"import: machine {hosted.Name} changed size while this import waited; send it again.");
            }
            used += delta;
            return null;
        });
        if (used != reserved)
        {
            await cluster.Resize(hosted.Name, used - reserved);
        }
        return error is not null ? Problems.From(WithHint(error, doesNotFitHint)) : TypedResults.Ok(ZoneStatsResponse.From(imported!.Stats()));
    }

    private static PageError WithHint(PageError error, string? doesNotFitHint) =>
        error.Kind == PageErrorKind.ImportDoesNotFit && doesNotFitHint is not null ? error with { Detail = $"{error.Detail} {doesNotFitHint}" } : error;

    public static async Task<Results<Ok<ZoneStatsResponse>, ProblemHttpResult>> Fragment(ZoneScope scope, Cluster.ClusterMachines cluster, FragmentRequest request)
    {
        var key = scope.Zone.Key;
        if (request.FreePages > scope.Zone.ManagedPages)
        {
            // Refused before the fragmenter runs: it would place (not fit) the pages a block at a time.
            return Problems.From(new PageError(PageErrorKind.ImportDoesNotFit,
                $"fragment: {request.FreePages} free pages do not fit zone {key}, which has {scope.Zone.ManagedPages} pages."));
        }
        var counts = PageAlloc.Domain.Import.Fragmenter.Target(key, request.FreePages!.Value, request.Order!.Value, request.UnusableIndex!.Value, request.Seed ?? 1)!;
        return await RebootWithFreeLists(scope.Hosted, cluster, key, counts, request.Seed ?? 1, pageCache: request.PageCache ?? false);
    }

    /// <summary>The most cells a pageblock map may ask for.</summary>
    public const int MaxPageblockCells = 65536;

    public static Results<Ok<PageblockMapResponse>, ProblemHttpResult> GetPageblocks(ZoneScope scope,
        [Description("The most cells to return (1..65536, default 4096); pageblocks are grouped to fit.")] int? cells)
    {
        if (cells is < 1 or > MaxPageblockCells)
        {
            return Problems.Of(ProblemCatalog.Validation, $"cells must be 1..{MaxPageblockCells}, not {cells}.");
        }
        return TypedResults.Ok(PageblockMapResponse.From(scope.Zone.PageblockMap(), cells ?? 4096));
    }
}
