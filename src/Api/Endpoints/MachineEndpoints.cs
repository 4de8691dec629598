using Microsoft.AspNetCore.Http.HttpResults;
using PageAlloc.Api.Contracts;
using PageAlloc.Api.Infrastructure;
using PageAlloc.Api.Security;
using PageAlloc.Domain.Proc;

namespace PageAlloc.Api.Endpoints;

/// <summary>Machine-wide views: stats, reset, and the /proc files in the kernel's text formats.</summary>
public static class MachineEndpoints
{
    public static IEndpointRouteBuilder MapMachine(this IEndpointRouteBuilder app)
    {
        var machine = app.MapGroup("/").WithTags("Machine").ProducesProblem(StatusCodes.Status401Unauthorized);
        machine.MapGet("/stats", GetStats).WithName("GetStats").WithSummary("Every zone's counters and the machine's totals");
        machine.MapPost("/reset", Reset).WithName("Reset").WithSummary("Reboot the simulated machine: every zone back to its boot state")
            .RequireAdministrator().ProducesProblem(StatusCodes.Status403Forbidden);

        var proc = app.MapGroup("/proc").WithTags("Proc").ProducesProblem(StatusCodes.Status401Unauthorized);
        proc.MapGet("/buddyinfo", (MachineHost h) => Text(ProcFs.BuddyInfo(h.Machine.Stats())))
            .WithName("ProcBuddyinfo").WithSummary("/proc/buddyinfo").Produces<string>(200, "text/plain");
        proc.MapGet("/pagetypeinfo", (MachineHost h) => Text(ProcFs.PageTypeInfo(h.Machine.Stats())))
            .WithName("ProcPagetypeinfo").WithSummary("/proc/pagetypeinfo").Produces<string>(200, "text/plain");
        proc.MapGet("/zoneinfo", (MachineHost h) => Text(ProcFs.ZoneInfo(h.Machine.Stats(), h.Machine.Cpus)))
            .WithName("ProcZoneinfo").WithSummary("/proc/zoneinfo (the fields PageAlloc models)").Produces<string>(200, "text/plain");
        proc.MapGet("/vmstat", (MachineHost h) => Text(ProcFs.VmStat(h.Machine.Stats())))
            .WithName("ProcVmstat").WithSummary("/proc/vmstat (the counters PageAlloc keeps)").Produces<string>(200, "text/plain");
        return app;
    }

    private static ContentHttpResult Text(string body) => TypedResults.Text(body, "text/plain; charset=utf-8");

    public static Ok<MachineStatsResponse> GetStats(MachineHost host)
    {
        var machine = host.Machine;
        var zones = machine.Stats();
        return TypedResults.Ok(new MachineStatsResponse(machine.Cpus, machine.MinFreeKbytes, MachineTotals.From(zones),
            zones.Select(ZoneStatsResponse.From).ToArray()));
    }

    /// <summary>Boots a fresh machine from the served configuration and returns its totals.</summary>
    public static Ok<MachineTotals> Reset(MachineHost host)
    {
        return TypedResults.Ok(MachineTotals.From(host.Reset().Stats()));
    }
}
