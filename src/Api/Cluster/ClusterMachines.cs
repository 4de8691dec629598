using System.Security.Claims;
using System.Text.Json;
using PageAlloc.Api.Contracts;
using PageAlloc.Api.Infrastructure;
using PageAlloc.Api.Machines;
using PageAlloc.Domain.Model;

namespace PageAlloc.Api.Cluster;

/// <summary>
/// The calls that change the cluster's set of machines, as the HTTP endpoints make them: a name
/// and room are reserved in the catalog, the machine's grain is made (on this silo: grains are
/// placed where they are first called), then the catalog publishes it, or gives the room back.
/// </summary>
public sealed class ClusterMachines(IGrainFactory grains, MachineRegistry registry)
{
    private IMachineCatalogGrain Catalog => grains.GetGrain<IMachineCatalogGrain>(IMachineCatalogGrain.Key);

    /// <summary>A new machine from <paramref name="birth"/> (a shape or a snapshot) of <paramref name="bytes"/> page state: its name, or why not.</summary>
    public async Task<(string? Name, MachineRefusal? Refusal)> Create(string? name, string? owner, long bytes, MachineBirth birth)
    {
        var limits = registry.Limits;
        var answer = await Catalog.Reserve(new CatalogReservation(name, owner, bytes, limits.MaxMachines, limits.MachinesPerKey, registry.BudgetBytes));
        if (answer.Name is not { } reserved)
        {
            return (null, new MachineRefusal(ProblemCatalog.All.First(k => k.Kind == answer.RefusalKind), answer.Detail!));
        }
        CatalogAnswer? refused;
        try
        {
            refused = await grains.GetGrain<IMachineGrain>(reserved).Create(birth);
        }
        catch
        {
            await Catalog.Cancel(reserved);
            throw;
        }
        if (refused is not null)
        {
            await Catalog.Cancel(reserved);
            return (null, new MachineRefusal(ProblemCatalog.All.First(k => k.Kind == refused.RefusalKind), refused.Detail!));
        }
        try
        {
            await Catalog.Publish(reserved, birth.Pinned);
        }
        catch
        {
            // Unpublished, the machine would be nobody's: not listed, its name given to a later
            // create once the reservation lapses, where its live grain would answer "exists".
            // Best effort: storage that refused the catalog may refuse these too; the reservation
            // lapses on its own, and the original failure is what the client is told.
            try
            {
                await grains.GetGrain<IMachineGrain>(reserved).Delete("its creation could not be published in the catalog");
                await Catalog.Cancel(reserved);
            }
            catch (Exception cleanup) when (ClusterFailures.IsUnavailable(cleanup) || ClusterFailures.IsStorageFailure(cleanup))
            {
            }
            throw;
        }
        return (reserved, null);
    }

    /// <summary>A shape as a machine's first state, with the keys' memcgs when keys are on.</summary>
    public MachineBirth FromShape(string? owner, bool pinned, MachineConfig config)
    {
        config.Memcgs = registry.MemcgsFor(config);
        return new MachineBirth(owner, pinned, JsonSerializer.Serialize(config), null, "Booted");
    }

    /// <summary>Deletes a machine wherever it is active: the catalog first (later creates may take the name), then its grain.</summary>
    public async Task<MachineRefusal?> Delete(string name, string why)
    {
        if (name == MachineRegistry.DefaultName)
        {
            return new(ProblemCatalog.DefaultMachine, "The default machine is the configured one and cannot be deleted; POST /machines/default/reset reboots it.");
        }
        if (!await Catalog.Remove(name))
        {
            return new(ProblemCatalog.UnknownMachine, $"There is no machine '{name}' (it was deleted).");
        }
        await grains.GetGrain<IMachineGrain>(name).Delete(why);
        return null;
    }

    /// <summary>Asks for more page state (an import of a real machine's zone size), or gives some back.</summary>
    public async Task<string?> Resize(string name, long delta) => await Catalog.Resize(name, delta, registry.BudgetBytes);

    /// <summary>Every machine <paramref name="user"/> may use, described by its grain wherever it is, and the bounds.</summary>
    public async Task<MachineListResponse> List(ClaimsPrincipal? user)
    {
        var listing = await Catalog.List(registry.BudgetBytes);
        var visible = listing.Machines.Where(m => registry.MayUse(m.Owner, user)).ToList();
        var described = await Task.WhenAll(visible.Select(m => Describe(m.Name)));
        return new MachineListResponse([.. described.OfType<MachineResponse>()], listing.Count, registry.Limits.MaxMachines, listing.UsedBytes, listing.BudgetBytes);
    }

    /// <summary>The machine as its grain describes it (here when it is active here); null when there is none, or its silo cannot be reached.</summary>
    public async Task<MachineResponse?> Describe(string name)
    {
        if (registry.Find(name, null) is { } local)
        {
            return MachineDescriptions.Describe(registry, local);
        }
        try
        {
            return await grains.GetGrain<IMachineGrain>(name).Describe() is { } json ? MachineDescriptions.FromJson(json) : null;
        }
        catch (Exception failure) when (ClusterFailures.IsUnavailable(failure))
        {
            return null; // its silo is being replaced: listed again once it is back
        }
    }
}
