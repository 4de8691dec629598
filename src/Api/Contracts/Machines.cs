using System.ComponentModel;
using PageAlloc.Domain.Model;

namespace PageAlloc.Api.Contracts;

/// <summary>
/// A machine's shape: the "Machine" configuration section in JSON (cpus, nodes and their zones,
/// min_free_kbytes, THP). Memory cgroups are not part of it: with API keys, every machine has one
/// per key, as the default machine has.
/// </summary>
public sealed record MachineShape(
    [property: Description("Simulated cpus, 1..1024; each has a pcp in every zone. Default 4.")] int? Cpus = null,
    [property: Description("vm.min_free_kbytes as if written after boot; left out, the kernel's boot value (calculate_min_free_kbytes(), raised for THP).")] long? MinFreeKbytes = null,
    [property: Description("THP enabled (always or madvise): khugepaged raises min_free_kbytes at boot. Default true.")] bool? TransparentHugepages = null,
    [property: Description("The nodes and their zones (DMA, DMA32, Normal, Movable), each with startPfn and pages; left out, the default machine's.")] List<NodeConfig>? Nodes = null,
    [property: Description("The page cache the system reads at boot: pages (up to four times the machine's), the first activePages of them the working set; "
        + "past what fits, kswapd reclaims the oldest. Left out: the default machine's when nodes and cpus are left out too, else none.")] PageCacheConfig? PageCache = null)
{
    /// <summary>The configuration this shape describes, what it leaves out taken from <paramref name="defaults"/>.</summary>
    public MachineConfig ToConfig(MachineConfig defaults) => new()
    {
        Cpus = Cpus ?? defaults.Cpus,
        MinFreeKbytes = MinFreeKbytes ?? (Nodes is null && Cpus is null ? defaults.MinFreeKbytes : null),
        TransparentHugepages = TransparentHugepages ?? defaults.TransparentHugepages,
        Nodes = Nodes is { Count: > 0 } nodes ? nodes : CopyNodes(defaults.Nodes),
        PageCache = PageCache is { } cache ? new PageCacheConfig { Pages = cache.Pages, ActivePages = cache.ActivePages }
            : Nodes is null && Cpus is null ? defaults.Copy().PageCache : new PageCacheConfig(),
    };

    public static MachineShape From(MachineConfig config) =>
        new(config.Cpus, config.MinFreeKbytes, config.TransparentHugepages, CopyNodes(config.Nodes),
            new PageCacheConfig { Pages = config.PageCache.Pages, ActivePages = config.PageCache.ActivePages });

    private static List<NodeConfig> CopyNodes(List<NodeConfig> nodes) =>
        [.. nodes.Select(n => new NodeConfig
        {
            Id = n.Id,
            Cpus = n.Cpus,
            Distances = n.Distances is null ? null : [.. n.Distances],
            Zones = [.. n.Zones.Select(z => new ZoneConfig { Name = z.Name, StartPfn = z.StartPfn, Pages = z.Pages })],
        })];
}

/// <summary>POST /machines: a new machine, booted from its shape.</summary>
public sealed record CreateMachineRequest(
    [property: Description("The machine's name (a DNS label: a-z, 0-9, '-', 1..63 characters); left out, one is made up (m-xxxxxxxx).")] string? Name = null,
    [property: Description("The machine's shape; what is left out is the default machine's.")] MachineShape? Config = null,
    [property: Description("A pinned machine is never deleted for being idle (Limits:MachineIdleMinutes). Default false.")] bool? Pinned = null);

/// <summary>POST /machines/{machine}/fork: a copy of the machine as it is now.</summary>
public sealed record ForkMachineRequest(
    [property: Description("The fork's name; left out, one is made up.")] string? Name = null,
    [property: Description("Whether the fork is pinned (never deleted for being idle). Default false.")] bool? Pinned = null);

/// <summary>A machine as a resource: who owns it, how long it lives, its shape and its totals.</summary>
public sealed record MachineResponse(
    string Name,
    [property: Description("The API key that owns it; null for a machine everyone may use (default, or any when keys are off).")] string? Owner,
    bool Pinned,
    DateTimeOffset CreatedAt,
    [property: Description("When a request last named it.")] DateTimeOffset LastUsedAt,
    [property: Description("When it is deleted unless used before (Limits:MachineIdleMinutes); null for a pinned machine.")] DateTimeOffset? IdleDeletionAt,
    [property: Description("The page state it is counted for against Limits:MachineMemoryBytes.")] long StateBytes,
    int Cpus,
    long MinFreeKbytes,
    [property: Description("Its zones' names, as the zone routes take them.")] string[] Zones,
    MachineTotals Totals,
    [property: Description("What a reset boots.")] MachineShape Config,
    [property: Description("The machine's routes start here: {href}/zones, {href}/proc/buddyinfo, ...")] string Href,
    [property: Description("Where the machine is served and its recovery point: the last snapshot in grain storage, and what a lost silo would lose.")] MachineRecoveryPoint Durability);

/// <summary>
/// A machine's recovery point (docs/scale-out.md): it is written to grain storage when its grain
/// deactivates and every Orleans:SnapshotIntervalSeconds while it changes; a machine whose silo is
/// lost resumes on another from its last snapshot, and what it did after is lost.
/// </summary>
public sealed record MachineRecoveryPoint(
    [property: Description("The Orleans silo the machine is activated on.")] string Silo,
    [property: Description("When its last snapshot was written; null before the first (then its shape is its recovery point).")] DateTimeOffset? SnapshotAt,
    [property: Description("The operations (calls that changed it, resets) the last snapshot holds.")] long SnapshotOperations,
    [property: Description("Operations since the machine was created, across its activations.")] long Operations,
    [property: Description("Operations made since the last snapshot: what would be lost with its silo now.")] long OperationsSinceSnapshot,
    [property: Description("The last snapshot's size, compressed.")] long SnapshotBytes,
    [property: Description("How long page calls waited while the last snapshot's copy was made, in ms (the compression and write run beside them).")] double SnapshotPauseMs,
    [property: Description("What this activation started from: its creation, or the snapshot it resumed from.")] MachineResume ResumedFrom);

/// <summary>What an activation started from, and whether the one before it ended cleanly.</summary>
public sealed record MachineResume(
    [property: Description("created (made on this silo), resumed (its last activation ended cleanly), or recovered (its silo was lost; what it did after the snapshot is gone).")] string How,
    [property: Description("The snapshot it started from; null when it started from its shape.")] DateTimeOffset? SnapshotAt,
    [property: Description("The operations that snapshot holds.")] long Operations,
    [property: Description("True when its last activation ended cleanly (its silo stopped, or it moved): nothing was lost. False: its silo was lost, and what it did after SnapshotAt is gone.")] bool Clean,
    [property: Description("The silo it was served on before.")] string? Silo);

/// <summary>GET /machines: the machines the caller may use, and the service's bounds on machines.</summary>
public sealed record MachineListResponse(
    MachineResponse[] Machines,
    [property: Description("Machines the service holds now (every key's), and its most (Limits:MaxMachines).")] int Count,
    int MaxMachines,
    [property: Description("Page state of all machines, and the budget (Limits:MachineMemoryBytes, at most half of what the process may use).")] long UsedBytes,
    long BudgetBytes);
