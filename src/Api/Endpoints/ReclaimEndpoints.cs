using System.ComponentModel;
using Microsoft.AspNetCore.Http.HttpResults;
using PageAlloc.Api.Contracts;
using PageAlloc.Api.Infrastructure;
using PageAlloc.Api.Machines;
using PageAlloc.Api.OpenApi;
using PageAlloc.Api.Security;
using PageAlloc.Domain.Model;

namespace PageAlloc.Api.Endpoints;

/// <summary>
/// What the system itself does with memory: reading files into the page cache (which fills memory
/// and makes kswapd and direct reclaim work, docs/reclaim.md) and writing /proc/sys/vm/drop_caches.
/// </summary>
public static class ReclaimEndpoints
{
    public static IEndpointRouteBuilder MapReclaim(this IEndpointRouteBuilder app)
    {
        var machine = app.MapGroup("/").WithTags("Machine")
            .Refuses("API keys are configured and the request has none, or an unknown one.", ProblemCatalog.Unauthenticated);
        machine.MapPost("/page_cache", ReadPageCache).WithName("ReadPageCache")
            .WithSummary("The system reads files: order-0 page-cache pages onto the LRU, reclaimed by kswapd once memory runs low")
            .WithDescription("Each page is filemap_alloc_folio() with readahead_gfp_mask() (GFP_HIGHUSER_MOVABLE | __GFP_NORETRY | __GFP_NOWARN) "
                + "preferring the highest zone of node 0, then folio_add_lru() onto the inactive file list (active=true: refaults of the "
                + "working set, activated as workingset_refault() does). The allocations wake kswapd below the low watermark, and it "
                + "reclaims the oldest page cache up to the high one; a read below min reclaims for itself. Clients' pages are never "
                + "reclaimed. Stops at the first allocation that fails. With API keys, only an administrator may call it.")
            .RequireMachineAdministration()
            .Answers(200, "Pages read and not read, what kswapd and direct reclaim freed meanwhile, and the LRU lists after.")
            .Refuses("pages is missing, not a number, negative or more than four times the machine's pages, or cpu does not exist; nothing changed.",
                ProblemCatalog.Of(PageErrorKind.InvalidLength), ProblemCatalog.Of(PageErrorKind.InvalidCpu), ProblemCatalog.MalformedRequest)
            .Refuses(MachineEndpoints.NotAdministrator, ProblemCatalog.Forbidden);
        machine.MapPost("/drop_caches", DropCaches).WithName("DropCaches")
            .WithSummary("Write /proc/sys/vm/drop_caches: 1 frees the page cache, 2 slab (none here), 3 both")
            .WithDescription("drop_caches_sysctl_handler(): value 1 frees every clean, unmapped page-cache page (all of PageAlloc's) and counts "
                + "drop_pagecache; 2 counts drop_slab (there is no slab); 3 does both; 4 only silences the kernel's log line. Pages "
                + "dropped count neither pgscan nor pgsteal. With API keys, only an administrator may call it.")
            .RequireMachineAdministration()
            .Answers(200, "The value written and the pages freed.")
            .Refuses("value is missing, not a number or outside 1..4, or cpu does not exist; nothing changed.",
                ProblemCatalog.Of(PageErrorKind.InvalidLength), ProblemCatalog.Of(PageErrorKind.InvalidCpu), ProblemCatalog.MalformedRequest)
            .Refuses(MachineEndpoints.NotAdministrator, ProblemCatalog.Forbidden);
        machine.MapPost("/compact_memory", CompactMemory).WithName("CompactMemory")
            .WithSummary("Write 1 to /proc/sys/vm/compact_memory: compact every zone whole")
            .WithDescription("compact_nodes() -> compact_node(): every zone, order -1, MIGRATE_SYNC, from the zone's ends until the scanners meet: "
                + "the migration scanner moves the LRU pages it finds (page cache) to free pages the free scanner isolates from the end, so "
                + "free memory gathers into large blocks there. Clients' pages are pinned and stay. Counts compact_migrate_scanned, "
                + "compact_free_scanned, compact_isolated and pgmigrate_success; traces mm_compaction_begin and _end. With API keys, only an administrator may call it.")
            .RequireMachineAdministration()
            .Answers(200, "Free blocks per order before and after, and what the run migrated and scanned.")
            .Refuses("cpu does not exist; nothing changed.", ProblemCatalog.Of(PageErrorKind.InvalidCpu), ProblemCatalog.MalformedRequest)
            .Refuses(MachineEndpoints.NotAdministrator, ProblemCatalog.Forbidden);
        return app;
    }

    public static Results<Ok<CompactMemoryResponse>, ProblemHttpResult> CompactMemory(MachineScope scope,
        [Description("The cpu whose pcp the migrated pages' sources are freed to; left out, the request thread's.")] int? cpu)
    {
        var machine = scope.Machine;
        var result = machine.CompactMemory(cpu ?? machine.CurrentCpu());
        if (result.Error is { } error)
        {
            return Problems.From(error);
        }
        var r = result.Value;
        return TypedResults.Ok(new CompactMemoryResponse(r.FreeBlocksBefore, r.FreeBlocksAfter, r.Migrated, r.MigrateScanned, r.FreeScanned));
    }

    public static Results<Ok<PageCacheReadResponse>, ProblemHttpResult> ReadPageCache(MachineScope scope,
        [Description("Pages to read, 0..four times the machine's pages.")] long pages,
        [Description("Refaults of the working set: onto the active file list. Default false.")] bool? active,
        [Description("The cpu the reads run on; left out, the request thread's.")] int? cpu)
    {
        var machine = scope.Machine;
        var result = machine.ReadFilePages(pages, active ?? false, cpu ?? machine.CurrentCpu());
        if (result.Error is { } error)
        {
            return Problems.From(error);
        }
        var r = result.Value;
        return TypedResults.Ok(new PageCacheReadResponse(r.Read, r.NotRead, r.ReclaimedByKswapd, r.ReclaimedDirectly,
            Enum.GetValues<LruList>().ToDictionary(LruLists.Name, machine.LruPages)));
    }

    public static Results<Ok<DropCachesResponse>, ProblemHttpResult> DropCaches(MachineScope scope,
        [Description("What to drop, 1..4 (1 page cache, 2 slab, 3 both, 4 silence).")] int value,
        [Description("The cpu whose pcp the freed pages go to; left out, the request thread's.")] int? cpu)
    {
        var machine = scope.Machine;
        var result = machine.DropCaches(value, cpu ?? machine.CurrentCpu());
        return result.Error is { } error ? Problems.From(error) : TypedResults.Ok(new DropCachesResponse(value, result.Value));
    }
}
