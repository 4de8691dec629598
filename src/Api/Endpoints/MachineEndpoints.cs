using Microsoft.AspNetCore.Http.HttpResults;
using PageAlloc.Api.Contracts;
using PageAlloc.Api.Infrastructure;
using PageAlloc.Api.Machines;
using PageAlloc.Api.OpenApi;
using PageAlloc.Api.Security;
using PageAlloc.Domain.Proc;

namespace PageAlloc.Api.Endpoints;

/// <summary>Machine-wide views: stats, reset, and the /proc files in the kernel's text formats.</summary>
public static class MachineEndpoints
{
    public static IEndpointRouteBuilder MapMachine(this IEndpointRouteBuilder app)
    {
        const string noKey = "API keys are configured and the request has none, or an unknown one.";
        var machine = app.MapGroup("/").WithTags("Machine").Refuses(noKey, ProblemCatalog.Unauthenticated);
        machine.MapGet("/stats", GetStats).WithName("GetStats")
            .WithSummary("Every zone's counters and the machine's totals")
            .WithDescription("GET /zones/{zone}/stats for every zone, with the machine's cpus, min_free_kbytes and totals.")
            .Answers(200, "The machine's counters.");
        machine.MapPost("/reset", Reset).WithName("Reset")
            .WithSummary("Reboot the simulated machine: every zone back to its boot state")
            .WithDescription("Boots a fresh machine from the served configuration (memblock_free_all(): every zone's pages freed in order-10 blocks) "
                + "and swaps it in; calls that arrive meanwhile get 503 booting. With API keys, only an administrator's key may reset.")
            .Answers(200, "The new machine's totals.")
            .RequireMachineAdministration()
            .OutsideMachineGate()
            .Refuses(NotAdministrator, ProblemCatalog.Forbidden);

        machine.MapPost("/vmstat_update", VmstatUpdate).WithName("VmstatUpdate")
            .WithSummary("Let simulated time pass: run the vmstat worker for some intervals (pcp high decay)")
            .WithDescription("PageAlloc's time stands still between calls. Each interval is one sysctl_stat_interval (a second) of the kernel's "
                + "vmstat worker on every cpu: refresh_cpu_vm_stats() runs decay_pcp_high(), which lowers each pcp's high by an eighth "
                + "towards high_min and returns what the list holds above it to the buddy. With API keys, only an administrator may call it.")
            .RequireMachineAdministration()
            .Answers(200, "The intervals run and the pages the decays returned to the buddy.")
            .Refuses("intervals is outside 1..3600.", ProblemCatalog.Validation)
            .Refuses(NotAdministrator, ProblemCatalog.Forbidden);

        var proc = app.MapGroup("/proc").WithTags("Proc").Refuses(noKey, ProblemCatalog.Unauthenticated);
        proc.MapGet("/buddyinfo", (MachineScope h) => Text(ProcFs.BuddyInfo(h.Machine.Stats())))
            .WithName("ProcBuddyinfo").WithSummary("/proc/buddyinfo")
            .WithDescription("Free blocks per order for each zone, in the kernel's frag_show() format.")
            .Produces<string>(200, "text/plain").Answers(200, "The file's text.");
        proc.MapGet("/pagetypeinfo", (MachineScope h) => Text(ProcFs.PageTypeInfo(h.Machine.Stats())))
            .WithName("ProcPagetypeinfo").WithSummary("/proc/pagetypeinfo")
            .WithDescription("Free blocks per order and migratetype, and pageblocks per migratetype, in the kernel's pagetypeinfo_show() format.")
            .Produces<string>(200, "text/plain").Answers(200, "The file's text.");
        proc.MapGet("/zoneinfo", (MachineScope h) => Text(ProcFs.ZoneInfo(h.Machine.Stats(), h.Machine.Cpus, h.Machine.Vmscan)))
            .WithName("ProcZoneinfo").WithSummary("/proc/zoneinfo (the fields PageAlloc models)")
            .WithDescription("Each zone's watermarks, spanned, present and managed pages, lowmem reserve (protection) and pcp high and batch per cpu, in zoneinfo_show()'s format.")
            .Produces<string>(200, "text/plain").Answers(200, "The file's text.");
        proc.MapGet("/vmstat", (MachineScope h) => Text(ProcFs.VmStat(h.Machine.Stats(), h.Machine.Vmscan)))
            .WithName("ProcVmstat").WithSummary("/proc/vmstat (the counters PageAlloc keeps)")
            .WithDescription("The allocator's vm events (pgalloc_*, pgfree, allocstall, ...) as name-value lines, as vmstat_show() prints them.")
            .Produces<string>(200, "text/plain").Answers(200, "The file's text.");

        var debugfs = app.MapGroup("/sys/kernel/debug/extfrag").WithTags("Proc").Refuses(noKey, ProblemCatalog.Unauthenticated);
        debugfs.MapGet("/extfrag_index", (MachineScope h) => Text(Fragmentation.ExtfragIndexText(h.Machine.Stats())))
            .WithName("DebugfsExtfragIndex").WithSummary("/sys/kernel/debug/extfrag/extfrag_index")
            .WithDescription("__fragmentation_index() per zone and order, as extfrag_show_print() prints it: -1.000 where a block of the "
                + "order is free; otherwise from 0 (an allocation would fail for lack of memory) to 1 (it would fail for fragmentation).")
            .Produces<string>(200, "text/plain").Answers(200, "The file's text.");
        debugfs.MapGet("/unusable_index", (MachineScope h) => Text(Fragmentation.UnusableIndexText(h.Machine.Stats())))
            .WithName("DebugfsUnusableIndex").WithSummary("/sys/kernel/debug/extfrag/unusable_index")
            .WithDescription("unusable_free_index() per zone and order, as unusable_show_print() prints it: the share of free memory "
                + "in blocks smaller than the order (1.000 when nothing is free).")
            .Produces<string>(200, "text/plain").Answers(200, "The file's text.");
        return app;
    }

    /// <summary>The 403 of a call that administers a machine (see MachineScopeFilter).</summary>
    public const string NotAdministrator = "The key is neither an administrator's nor, on a machine of its own, its owner's.";

    private static ContentHttpResult Text(string body) => TypedResults.Text(body, "text/plain; charset=utf-8");

    public static Ok<MachineStatsResponse> GetStats(MachineScope scope)
    {
        var machine = scope.Machine;
        var zones = machine.Stats();
        var reclaim = machine.Vmscan.Counters.Read();
        return TypedResults.Ok(new MachineStatsResponse(machine.Cpus, machine.MinFreeKbytes, MachineTotals.From(zones),
            zones.Select(ZoneStatsResponse.From).ToArray(),
            Domain.Reclaim.VmscanEvents.Names.Select((name, i) => (name, i)).ToDictionary(p => p.name, p => reclaim[p.i])));
    }

    /// <summary>The most intervals one call may run: an hour of simulated time (high has decayed to high_min long before).</summary>
    public const int MaxVmstatIntervals = 3600;

    public static Results<Ok<VmstatUpdateResponse>, ProblemHttpResult> VmstatUpdate(MachineScope scope,
        [System.ComponentModel.Description("Intervals (seconds) to run, 1..3600; 1 by default.")] int? intervals)
    {
        if (intervals is < 1 or > MaxVmstatIntervals)
        {
            return Problems.Of(ProblemCatalog.Validation, $"intervals must be 1..{MaxVmstatIntervals}, not {intervals}.");
        }
        var machine = scope.Machine;
        long drained = 0;
        for (var i = 0; i < (intervals ?? 1); i++)
        {
            drained += machine.VmstatUpdate();
        }
        return TypedResults.Ok(new VmstatUpdateResponse(intervals ?? 1, drained));
    }

    /// <summary>Boots a fresh machine from the machine's configuration and returns its totals.</summary>
    public static Ok<MachineTotals> Reset(MachineScope scope)
    {
        return TypedResults.Ok(MachineTotals.From(scope.Hosted.Reset().Stats()));
    }
}
