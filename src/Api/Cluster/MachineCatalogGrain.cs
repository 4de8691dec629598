using Orleans.Runtime;
using PageAlloc.Api.Infrastructure;
using PageAlloc.Api.Machines;

namespace PageAlloc.Api.Cluster;

/// <summary>The catalog's stored state: every machine by name, reserved or published.</summary>
[GenerateSerializer]
public sealed class CatalogState
{
    [Id(0)] public Dictionary<string, CatalogEntry> Machines { get; set; } = new(StringComparer.Ordinal);
}

/// <summary>
/// <see cref="IMachineCatalogGrain"/>: one activation in the cluster, its calls one at a time, each
/// change written to storage before it answers, so a catalog activated again (its silo lost) knows
/// every machine. A reservation a silo never published or cancelled (it was lost mid-create) is
/// dropped after <see cref="ReservationLifetime"/>.
/// </summary>
public sealed class MachineCatalogGrain(
    [PersistentState("catalog", ClusterSetup.Storage)] IPersistentState<CatalogState> state,
    IClusterMembershipService membership,
    TimeProvider time) : Grain, IMachineCatalogGrain
{
    public static readonly TimeSpan ReservationLifetime = TimeSpan.FromMinutes(5);

    private Dictionary<string, CatalogEntry> Machines => state.State.Machines;

    // A write that failed (Redis timed out, or was down) may still land later, under a version this
    // activation never learns; or not land, leaving a change here that storage does not have.
    // Either way storage is the truth: the next call reads it again before it answers.
    private bool _unsure;

    public async Task<CatalogAnswer> Reserve(CatalogReservation reservation)
    {
        await SyncAsync();
        DropStaleReservations();
        if (Refuse(reservation) is { } refusal)
        {
            return refusal;
        }
        var name = reservation.Name ?? NewName();
        Machines[name] = new CatalogEntry { Name = name, Owner = reservation.Owner, Bytes = reservation.Bytes, ReservedAt = time.GetUtcNow() };
        await SaveAsync();
        return new CatalogAnswer(name, null, null);
    }

    private CatalogAnswer? Refuse(CatalogReservation request)
    {
        if (request.Name is { } name && Machines.TryGetValue(name, out var taken))
        {
            return Refused(ProblemCatalog.MachineExists, taken.Published
                ? $"A machine named '{name}' exists already; choose another name or leave it out."
                : $"A machine named '{name}' is being made (reserved at {taken.ReservedAt:O}; a reservation whose create failed lapses after {ReservationLifetime.TotalMinutes} minutes); choose another name or leave it out.");
        }
        if (Machines.Count >= request.MaxMachines)
        {
            return Refused(ProblemCatalog.MachineLimit, $"The service holds {Machines.Count} machines, its most (Limits:MaxMachines); delete one first.");
        }
        var budget = Budget(request.BudgetPerSilo);
        var used = UsedBytes;
        if (used + request.Bytes > budget)
        {
            return Refused(ProblemCatalog.MachineLimit, $"The machine's page state ({request.Bytes >> 20} MiB) would take the machines past their memory budget: "
                + $"{used >> 20} MiB of {budget >> 20} MiB is in use (Limits:MachineMemoryBytes per silo, {ActiveSilos} silos); delete a machine or ask for a smaller one.");
        }
        if (request.Owner is { } owner && Machines.Values.Count(m => m.Owner == owner) >= request.MachinesPerKey)
        {
            return Refused(ProblemCatalog.MachineLimit, $"Key '{owner}' owns {request.MachinesPerKey} machines, its most (Limits:MachinesPerKey); delete one first.");
        }
        return null;
    }

    private static CatalogAnswer Refused(ProblemKind kind, string detail) => new(null, kind.Kind, detail);

    public async Task Publish(string name, bool pinned)
    {
        await SyncAsync();
        if (Machines.TryGetValue(name, out var entry))
        {
            entry.Published = true;
            entry.Pinned = pinned;
            await SaveAsync();
        }
    }

    public async Task Cancel(string name)
    {
        await SyncAsync();
        if (Machines.TryGetValue(name, out var entry) && !entry.Published && Machines.Remove(name))
        {
            await SaveAsync();
        }
    }

    public async Task<bool> Remove(string name)
    {
        await SyncAsync();
        if (!Machines.TryGetValue(name, out var entry) || !entry.Published)
        {
            return false;
        }
        Machines.Remove(name);
        await SaveAsync();
        return true;
    }

    public async Task<string?> Resize(string name, long delta, long budgetPerSilo)
    {
        await SyncAsync();
        if (!Machines.TryGetValue(name, out var entry))
        {
            return null; // deleted meanwhile: no longer counted, nothing to take or give back
        }
        var budget = Budget(budgetPerSilo);
        if (delta > 0 && UsedBytes + delta > budget)
        {
            return $"machine {name} would grow by {delta >> 20} MiB of page state, past the machines' memory budget "
                + $"({UsedBytes >> 20} MiB of {budget >> 20} MiB in use, Limits:MachineMemoryBytes per silo).";
        }
        entry.Bytes += delta;
        await SaveAsync();
        return null;
    }

    public async Task<CatalogListing> List(long budgetPerSilo)
    {
        await SyncAsync();
        return new CatalogListing(
            [.. Machines.Values.Where(m => m.Published).OrderBy(m => m.Name == MachineRegistry.DefaultName ? 0 : 1).ThenBy(m => m.Name, StringComparer.Ordinal)],
            Machines.Count, UsedBytes, Budget(budgetPerSilo));
    }

    private async Task SaveAsync()
    {
        try
        {
            await state.WriteStateAsync();
        }
        catch
        {
            _unsure = true;
            throw;
        }
    }

    private async Task SyncAsync()
    {
        if (_unsure)
        {
            await state.ReadStateAsync();
            _unsure = false;
        }
    }

    public async Task EnsureDefault(long bytes)
    {
        await SyncAsync();
        if (!Machines.ContainsKey(MachineRegistry.DefaultName))
        {
            Machines[MachineRegistry.DefaultName] = new CatalogEntry
            {
                Name = MachineRegistry.DefaultName, Pinned = true, Bytes = bytes, Published = true, ReservedAt = time.GetUtcNow(),
            };
            await SaveAsync();
        }
    }

    private long UsedBytes => Machines.Values.Sum(m => m.Bytes);

    private int ActiveSilos => Math.Max(1, membership.CurrentSnapshot.Members.Values.Count(m => m.Status == SiloStatus.Active));

    private long _budgetPerSilo;

    /// <summary>Each active silo brings Limits:MachineMemoryBytes (as the silo asking has it; every silo is configured alike).</summary>
    private long Budget(long perSilo)
    {
        if (perSilo > 0)
        {
            _budgetPerSilo = perSilo;
        }
        return _budgetPerSilo * ActiveSilos;
    }

    private void DropStaleReservations()
    {
        var cutoff = time.GetUtcNow() - ReservationLifetime;
        foreach (var stale in Machines.Values.Where(m => !m.Published && m.ReservedAt < cutoff).Select(m => m.Name).ToList())
        {
            Machines.Remove(stale);
        }
    }

    private string NewName()
    {
        while (true)
        {
            var name = "m-" + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(4));
            if (!Machines.ContainsKey(name))
            {
                return name;
            }
        }
    }
}
