namespace PageAlloc.Api.Cluster;

/// <summary>
/// The cluster's one list of machines (a single grain, key "catalog", kept in grain storage):
/// names, owners and page state. Every change to the set of machines is a call here, one at a
/// time (the grain is not reentrant), so the bounds hold exactly across silos and racing clients:
/// Limits:MaxMachines, Limits:MachinesPerKey and the memory budget (Limits:MachineMemoryBytes per
/// active silo). Page calls never come here.
/// </summary>
public interface IMachineCatalogGrain : IGrainWithStringKey
{
    public const string Key = "catalog";

    /// <summary>Takes a name (made up when null) and room for a machine still being made; refused, nothing is taken.</summary>
    Task<CatalogAnswer> Reserve(CatalogReservation reservation);

    /// <summary>The reserved machine exists now.</summary>
    Task Publish(string name, bool pinned);

    /// <summary>The reserved machine could not be made: its name and room are given back.</summary>
    Task Cancel(string name);

    /// <summary>Removes a machine that exists; false when there is none (or it is still being made).</summary>
    Task<bool> Remove(string name);

    /// <summary>A machine grows (an import of a real machine's zone) or shrinks: refused when past the budget.</summary>
    Task<string?> Resize(string name, long delta, long budgetPerSilo);

    /// <summary>Every machine that exists (not those being made), by name.</summary>
    Task<CatalogListing> List(long budgetPerSilo);

    /// <summary>Counts the default machine (the configured one, made by its grain's first activation, not by a create).</summary>
    Task EnsureDefault(long bytes);
}

/// <summary>The bounds a reservation is held to, as the calling silo is configured (every silo has the same).</summary>
[GenerateSerializer, Immutable]
public sealed record CatalogReservation(
    [property: Id(0)] string? Name,
    [property: Id(1)] string? Owner,
    [property: Id(2)] long Bytes,
    [property: Id(3)] int MaxMachines,
    [property: Id(4)] int MachinesPerKey,
    [property: Id(5)] long BudgetPerSilo);

/// <summary>The name reserved, or why not (a problem kind and its detail).</summary>
[GenerateSerializer, Immutable]
public sealed record CatalogAnswer(
    [property: Id(0)] string? Name,
    [property: Id(1)] string? RefusalKind,
    [property: Id(2)] string? Detail);

/// <summary>One machine in the catalog.</summary>
[GenerateSerializer]
public sealed class CatalogEntry
{
    [Id(0)] public string Name { get; set; } = "";
    [Id(1)] public string? Owner { get; set; }
    [Id(2)] public bool Pinned { get; set; }
    [Id(3)] public long Bytes { get; set; }
    [Id(4)] public bool Published { get; set; }
    [Id(5)] public DateTimeOffset ReservedAt { get; set; }
}

/// <summary>The machines, and the bounds they are counted against.</summary>
[GenerateSerializer, Immutable]
public sealed record CatalogListing(
    [property: Id(0)] CatalogEntry[] Machines,
    [property: Id(1)] int Count,
    [property: Id(2)] long UsedBytes,
    [property: Id(3)] long BudgetBytes);
