using PageAlloc.Api.Cluster;
using PageAlloc.Api.Machines;
using PageAlloc.Api.OpenApi;

namespace PageAlloc.Api.Endpoints;

/// <summary>
/// The routes that act on one machine (zones and page calls, stats, /proc, debugfs, events, reset,
/// import, fragment, replay, tests, fault injection, vmstat_update, page cache and drop_caches, experiments), mapped on a group that names
/// the machine: /machines/{machine}, or the root, whose routes are default's.
/// </summary>
public static class MachineScopedRoutes
{
    public static void MapMachineScoped(this IEndpointRouteBuilder app, RouteGroupBuilder group)
    {
        group.RequireMachineScope().RunsOnMachineSilo()
            .Refuses("No machine has the name in the path, or it is another API key's (GET /machines lists yours).", Infrastructure.ProblemCatalog.UnknownMachine)
            .Refuses("The machine's silo is stopping, was lost or did not answer: retry (docs/scale-out.md).", Infrastructure.ProblemCatalog.MachineUnavailable);
        group.MapZones();
        group.MapPageCalls();
        group.MapMachine();
        group.MapReclaim();
        group.MapTests();
        group.MapEvents();
        group.MapReplay();
        group.MapExperiments();
        group.MapFaultInjection();
    }

    /// <summary>
    /// Makes the group's routes the default machine's aliases: out of the OpenAPI document (which
    /// describes them once, under /machines/{machine}) and without endpoint names, which must be
    /// unique and belong to the documented routes.
    /// </summary>
    public static RouteGroupBuilder AsDefaultMachineAliases(this RouteGroupBuilder group)
    {
        group.ExcludeFromDescription();
        ((IEndpointConventionBuilder)group).Finally(endpoint =>
        {
            for (var i = endpoint.Metadata.Count - 1; i >= 0; i--)
            {
                if (endpoint.Metadata[i] is IEndpointNameMetadata or IRouteNameMetadata)
                {
                    endpoint.Metadata.RemoveAt(i);
                }
            }
        });
        return group;
    }
}
