using System.Collections.Concurrent;
using System.Security.Claims;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Options;
using PageAlloc.Api.Infrastructure;
using PageAlloc.Api.Security;
using PageAlloc.Domain.Allocator;
using PageAlloc.Domain.Model;
using PageAlloc.Domain.Tracing;

namespace PageAlloc.Api.Machines;

/// <summary>A refused change to the set of machines: the problem's kind and what was wrong.</summary>
public sealed record MachineRefusal(ProblemKind Kind, string Detail);

/// <summary>
/// The machines activated on this silo, by name: each is a <see cref="Cluster.MachineGrain"/>'s,
/// registered when the grain activates and removed when it ends, so that a request reaching this
/// silo for one of them runs here on it (<see cref="Cluster.MachineForwarding"/>) and any other is
/// sent to its grain. Lookups are lock-free. The cluster's list of machines, and the bounds on
/// it, are the catalog's (<see cref="Cluster.IMachineCatalogGrain"/>); the calls that change it
/// are <see cref="Cluster.ClusterMachines"/>.
/// </summary>
public sealed partial class MachineRegistry
{
    public const string DefaultName = "default";

    /// <summary>Machine names: lower-case letters, digits and '-', 1..63, starting with a letter or digit (a DNS label).</summary>
    [GeneratedRegex("^[a-z0-9][a-z0-9-]{0,62}$")]
    public static partial Regex NamePattern();

    private readonly ConcurrentDictionary<string, HostedMachine> _machines = new(StringComparer.Ordinal);
    private readonly LimitsOptions _limits;
    private readonly SecurityOptions _security;
    private readonly ILogger _machineLogger; // one category for every machine: their names are in the messages
    private readonly TimeProvider _time;

    public MachineRegistry(IOptions<LimitsOptions> limits, IOptions<SecurityOptions> security, IOptions<Cluster.PageAllocClusterOptions> cluster,
        ILocalSiloDetails silo, ILoggerFactory loggers, TimeProvider? time = null)
    {
        _silo = silo;
        _limits = limits.Value;
        _machineLogger = loggers.CreateLogger<HostedMachine>();
        _time = time ?? TimeProvider.System;
        SecurityEnabled = security.Value.Enabled;
        _security = security.Value;
        BudgetBytes = _limits.EffectiveMachineMemoryBytes();
        LocalShortcut = cluster.Value.LocalShortcut;
    }

    private readonly ILocalSiloDetails _silo;

    /// <summary>This silo's address, as the cluster knows it.</summary>
    public string SiloAddress => _silo.SiloAddress.ToString();

    /// <summary>How a machine is built from a configuration and its tracepoints; tests swap it to watch boots.</summary>
    public Func<MachineConfig, Tracepoints, Machine> BootMachine { get; set; } = (config, tracepoints) => new Machine(config, tracepoints);

    /// <summary>Whether API keys are configured: then machines have owners.</summary>
    public bool SecurityEnabled { get; }

    /// <summary>Limits:MachineMemoryBytes as it applies to this process (the catalog counts one such budget per active silo).</summary>
    public long BudgetBytes { get; }

    public LimitsOptions Limits => _limits;

    /// <summary>Orleans:LocalShortcut: a request for a machine activated here runs here without a grain call.</summary>
    public bool LocalShortcut { get; }

    public long NowMs => _time.GetTimestamp() * 1000 / _time.TimestampFrequency;

    /// <summary>The machines activated on this silo, default first, then by name.</summary>
    public IEnumerable<HostedMachine> All =>
        _machines.Values.OrderBy(m => m.Name == DefaultName ? 0 : 1).ThenBy(m => m.Name, StringComparer.Ordinal);

    public bool IsLocal(string name) => _machines.ContainsKey(name);

    /// <summary>
    /// The machine of this name activated here, if <paramref name="user"/> may use it: with keys on, a
    /// machine with an owner is that key's and the administrators'; to anyone else it does not exist.
    /// </summary>
    public HostedMachine? Find(string name, ClaimsPrincipal? user)
    {
        if (!_machines.TryGetValue(name, out var hosted))
        {
            return null;
        }
        return MayUse(hosted.Owner, user) ? hosted : null;
    }

    public bool MayUse(string? owner, ClaimsPrincipal? user) =>
        !SecurityEnabled || owner is null || IsAdministrator(user) || string.Equals(user?.Identity?.Name, owner, StringComparison.Ordinal);

    public static bool IsAdministrator(ClaimsPrincipal? user) => user?.IsInRole(ApiKeyAuthenticationHandler.AdminRole) == true;

    /// <summary>The owner a new machine of this caller gets: its key, or nobody when keys are off.</summary>
    public string? OwnerFor(ClaimsPrincipal? user) => SecurityEnabled ? user?.Identity?.Name : null;

    /// <summary>With keys on, the keys' memcgs (a key's default share is of this machine's pages); none when keys are off.</summary>
    public List<MemcgConfig> MemcgsFor(MachineConfig config) => SecurityEnabled ? SecuritySetup.MemcgsFor(_security, config) : [];

    private readonly ConcurrentDictionary<string, byte> _movedAway = new(StringComparer.Ordinal);

    /// <summary>A machine's grain has activated here.</summary>
    public void Activated(HostedMachine hosted)
    {
        _machines[hosted.Name] = hosted;
        _movedAway.TryRemove(hosted.Name, out _);
    }

    /// <summary>
    /// A machine's grain ends here: later requests here go to the grain. <paramref name="deleted"/>
    /// false: it moves (its silo stops), and a request already routed to it here is told to retry.
    /// </summary>
    public void Deactivated(HostedMachine hosted, bool deleted)
    {
        if (!deleted)
        {
            _movedAway[hosted.Name] = 0;
        }
        _machines.TryRemove(new KeyValuePair<string, HostedMachine>(hosted.Name, hosted));
        MachineLeft?.Invoke(hosted.Name);
    }

    /// <summary>Raised when a machine leaves this silo (deleted, or moved off it): what is kept here for it goes (its experiments).</summary>
    public event Action<string>? MachineLeft;

    /// <summary>Whether the machine left this silo by moving (not by being deleted) since it was last here.</summary>
    public bool MovedAway(string name) => _movedAway.ContainsKey(name);

    /// <summary>The machines here, not pinned, that nobody has named for Limits:MachineIdleMinutes.</summary>
    public IEnumerable<HostedMachine> Idle()
    {
        if (_limits.MachineIdleMinutes <= 0)
        {
            return [];
        }
        var cutoff = NowMs - (_limits.MachineIdleMinutes * 60_000L);
        return _machines.Values.Where(m => !m.Pinned && m.LastUsedMs < cutoff).ToList();
    }

    /// <summary>When an idle machine would be deleted (null: pinned, or never).</summary>
    public DateTimeOffset? IdleDeadline(HostedMachine hosted)
    {
        if (hosted.Pinned || _limits.MachineIdleMinutes <= 0)
        {
            return null;
        }
        var idleMs = NowMs - hosted.LastUsedMs;
        return _time.GetUtcNow().AddMilliseconds((_limits.MachineIdleMinutes * 60_000L) - idleMs);
    }

    /// <summary>A machine as this silo serves it (not yet booted, not yet registered).</summary>
    public HostedMachine NewHosted(string name, string? owner, bool pinned, MachineConfig config, Tracepoints tracepoints, DateTimeOffset createdAt) =>
        new(name, owner, pinned, config, tracepoints, (c, t) => BootMachine(c, t), _machineLogger, createdAt, NowMs);
}
