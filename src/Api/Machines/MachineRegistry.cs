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

/// <summary>A name and room in the budget taken for a machine still being made (<see cref="MachineRegistry.Reserve"/>).</summary>
public sealed record MachineReservation(string Name, string? Owner, long Bytes);

/// <summary>
/// Every machine the service holds, by name: "default" (the Machine section, booted at start,
/// shared, never deleted) and the ones clients create, restore or fork. Lookups are lock-free; a
/// change to the set (create, delete, a resize by import) is made under one lock, which keeps the
/// bounds exact under racing clients: at most Limits:MaxMachines machines, at most
/// Limits:MachineMemoryBytes of page state between them, at most Limits:MachinesPerKey per key.
/// A machine is counted from the moment its name is taken, before it boots, so two creates racing
/// for the last room cannot both get it.
/// </summary>
public sealed partial class MachineRegistry
{
    public const string DefaultName = "default";

    /// <summary>Machine names: lower-case letters, digits and '-', 1..63, starting with a letter or digit (a DNS label).</summary>
    [GeneratedRegex("^[a-z0-9][a-z0-9-]{0,62}$")]
    public static partial Regex NamePattern();

    private readonly ConcurrentDictionary<string, HostedMachine> _machines = new(StringComparer.Ordinal);
    private readonly Lock _changes = new();
    private readonly Dictionary<string, string?> _reserved = new(StringComparer.Ordinal); // names taken by machines still booting, and their owners
    private readonly LimitsOptions _limits;
    private readonly ILogger _logger;
    private readonly ILogger _machineLogger; // one category for every machine: their names are in the messages
    private readonly TimeProvider _time;
    private long _usedBytes;
    private int _count;

    public MachineRegistry(IOptions<MachineConfig> config, IOptions<LimitsOptions> limits, IOptions<SecurityOptions> security,
        ILoggerFactory loggers, TimeProvider? time = null)
    {
        _limits = limits.Value;
        _logger = loggers.CreateLogger<MachineRegistry>();
        _machineLogger = loggers.CreateLogger<HostedMachine>();
        _time = time ?? TimeProvider.System;
        SecurityEnabled = security.Value.Enabled;
        _security = security.Value;
        BudgetBytes = _limits.EffectiveMachineMemoryBytes();
        Default = NewHosted(DefaultName, owner: null, pinned: true, config.Value, new Tracepoints());
        _machines[DefaultName] = Default;
        _usedBytes = Default.StateBytes;
        _count = 1;
    }

    /// <summary>How a machine is built from a configuration and its tracepoints; tests swap it to watch boots.</summary>
    public Func<MachineConfig, Tracepoints, Machine> BootMachine { get; init; } = (config, tracepoints) => new Machine(config, tracepoints);

    /// <summary>The configured machine, served at today's routes as well as at /machines/default.</summary>
    public HostedMachine Default { get; }

    /// <summary>Whether API keys are configured: then machines have owners.</summary>
    public bool SecurityEnabled { get; }

    private readonly SecurityOptions _security;

    /// <summary>Limits:MachineMemoryBytes as it applies to this process.</summary>
    public long BudgetBytes { get; }

    public long UsedBytes => Interlocked.Read(ref _usedBytes);

    public int Count => Volatile.Read(ref _count);

    public int MaxMachines => _limits.MaxMachines;

    public long NowMs => _time.GetTimestamp() * 1000 / _time.TimestampFrequency;

    /// <summary>Every machine, default first, then by name.</summary>
    public IEnumerable<HostedMachine> All =>
        _machines.Values.OrderBy(m => m.Name == DefaultName ? 0 : 1).ThenBy(m => m.Name, StringComparer.Ordinal);

    /// <summary>
    /// The machine of this name, if <paramref name="user"/> may use it: with keys on, a machine with an
    /// owner is that key's and the administrators'; to anyone else it does not exist.
    /// </summary>
    public HostedMachine? Find(string name, ClaimsPrincipal? user)
    {
        if (!_machines.TryGetValue(name, out var hosted))
        {
            return null;
        }
        return MayUse(hosted, user) ? hosted : null;
    }

    public bool MayUse(HostedMachine hosted, ClaimsPrincipal? user) =>
        !SecurityEnabled || hosted.Owner is null || IsAdministrator(user) || string.Equals(user?.Identity?.Name, hosted.Owner, StringComparison.Ordinal);

    public static bool IsAdministrator(ClaimsPrincipal? user) => user?.IsInRole(ApiKeyAuthenticationHandler.AdminRole) == true;

    /// <summary>The owner a new machine of this caller gets: its key, or nobody when keys are off.</summary>
    public string? OwnerFor(ClaimsPrincipal? user) => SecurityEnabled ? user?.Identity?.Name : null;

    /// <summary>
    /// A new machine of <paramref name="config"/>, booted: refused, nothing is held. With keys on, the
    /// keys' memcgs are the machine's, as they are the default machine's (a key's default share is
    /// of this machine's pages).
    /// </summary>
    public (HostedMachine? Machine, MachineRefusal? Refusal) Create(string? name, string? owner, bool pinned, MachineConfig config)
    {
        config.Memcgs = SecurityEnabled ? SecuritySetup.MemcgsFor(_security, config) : [];
        var (reservation, refusal) = Reserve(name, owner, config.StateBytes());
        return reservation is null ? (null, refusal) : (Publish(reservation, pinned, config, new Tracepoints(), hosted => hosted.Reset()), null);
    }

    /// <summary>
    /// Takes a name and room for <paramref name="bytes"/> of page state, before the machine exists
    /// (a restore learns its size from the snapshot's header, a fork from its original): refused,
    /// nothing is taken. The reservation is then published or cancelled.
    /// </summary>
    public (MachineReservation? Reservation, MachineRefusal? Refusal) Reserve(string? name, string? owner, long bytes)
    {
        lock (_changes)
        {
            if (Refuse(name, owner, bytes) is { } refusal)
            {
                return (null, refusal);
            }
            var taken = name ?? NewName();
            _reserved.Add(taken, owner);
            _usedBytes += bytes;
            _count++;
            return (new MachineReservation(taken, owner, bytes), null);
        }
    }

    /// <summary>Gives back what <see cref="Reserve"/> took, when the machine could not be made.</summary>
    public void Cancel(MachineReservation reservation) => Release(reservation.Name, reservation.Bytes);

    /// <summary>
    /// Makes the reserved machine and serves it: <paramref name="serve"/> boots or adopts its first
    /// machine (with <paramref name="tracepoints"/>, which a restore or fork has built it with).
    /// </summary>
    public HostedMachine Publish(MachineReservation reservation, bool pinned, MachineConfig config, Tracepoints tracepoints, Action<HostedMachine> serve)
    {
        var hosted = NewHosted(reservation.Name, reservation.Owner, pinned, config, tracepoints);
        System.Diagnostics.Debug.Assert(hosted.StateBytes == reservation.Bytes, "a machine is counted for the page state it was reserved for");
        try
        {
            serve(hosted);
        }
        catch
        {
            Cancel(reservation);
            throw;
        }
        lock (_changes)
        {
            _reserved.Remove(reservation.Name);
            _machines[reservation.Name] = hosted;
        }
        LogCreated(_logger, reservation.Name, reservation.Owner ?? "(shared)", reservation.Bytes);
        return hosted;
    }

    private MachineRefusal? Refuse(string? name, string? owner, long bytes)
    {
        if (name is not null && (_machines.ContainsKey(name) || _reserved.ContainsKey(name)))
        {
            return new(ProblemCatalog.MachineExists, $"A machine named '{name}' exists already; choose another name or leave it out.");
        }
        if (_count >= _limits.MaxMachines)
        {
            return new(ProblemCatalog.MachineLimit, $"The service holds {_count} machines, its most (Limits:MaxMachines); delete one first.");
        }
        if (_usedBytes + bytes > BudgetBytes)
        {
            return new(ProblemCatalog.MachineLimit, $"The machine's page state ({bytes >> 20} MiB) would take the machines past their memory budget: "
                + $"{_usedBytes >> 20} MiB of {BudgetBytes >> 20} MiB is in use (Limits:MachineMemoryBytes); delete a machine or ask for a smaller one.");
        }
        if (owner is not null && _machines.Values.Count(m => m.Owner == owner) + _reserved.Values.Count(o => o == owner) >= _limits.MachinesPerKey)
        {
            return new(ProblemCatalog.MachineLimit, $"Key '{owner}' owns {_limits.MachinesPerKey} machines, its most (Limits:MachinesPerKey); delete one first.");
        }
        return null;
    }

    private string NewName()
    {
        while (true)
        {
            var name = "m-" + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(4));
            if (!_machines.ContainsKey(name) && !_reserved.ContainsKey(name))
            {
                return name;
            }
        }
    }

    private void Release(string name, long bytes)
    {
        lock (_changes)
        {
            _reserved.Remove(name);
            _usedBytes -= bytes;
            _count--;
        }
    }

    /// <summary>
    /// Asks for <paramref name="delta"/> more bytes of budget for a machine that grows (an import
    /// with a real machine's zone size), or gives some back (a negative delta).
    /// </summary>
    public PageError? Resize(HostedMachine hosted, long delta)
    {
        lock (_changes)
        {
            if (!_machines.TryGetValue(hosted.Name, out var current) || current != hosted)
            {
                return null; // deleted meanwhile: no longer counted, so nothing to take or give back
            }
            if (delta > 0 && _usedBytes + delta > BudgetBytes)
            {
                return new PageError(PageErrorKind.ImportDoesNotFit,
                    $"import: machine {hosted.Name} would grow by {delta >> 20} MiB of page state, past the machines' memory budget "
                    + $"({_usedBytes >> 20} MiB of {BudgetBytes >> 20} MiB in use, Limits:MachineMemoryBytes).");
            }
            _usedBytes += delta;
            return null;
        }
    }

    /// <summary>Deletes a machine: requests running on it finish, later ones do not find it. Default stays.</summary>
    public MachineRefusal? Delete(HostedMachine hosted, string why)
    {
        if (hosted == Default)
        {
            return new(ProblemCatalog.DefaultMachine, "The default machine is the configured one and cannot be deleted; POST /machines/default/reset reboots it.");
        }
        // Under the machine's boot lock, which a resize holds from its reservation until the machine's
        // size is updated: a delete racing an import subtracts the size that was counted.
        lock (hosted.BootLock)
        lock (_changes)
        {
            if (!_machines.TryRemove(new KeyValuePair<string, HostedMachine>(hosted.Name, hosted)))
            {
                return new(ProblemCatalog.UnknownMachine, $"There is no machine '{hosted.Name}' (it was deleted).");
            }
            _usedBytes -= hosted.StateBytes;
            _count--;
        }
        LogDeleted(_logger, hosted.Name, why);
        return null;
    }

    /// <summary>Deletes every machine not pinned that nobody has named for Limits:MachineIdleMinutes; returns how many.</summary>
    public int DeleteIdle()
    {
        if (_limits.MachineIdleMinutes <= 0)
        {
            return 0;
        }
        var cutoff = NowMs - (_limits.MachineIdleMinutes * 60_000L);
        var deleted = 0;
        foreach (var hosted in _machines.Values)
        {
            if (!hosted.Pinned && hosted.LastUsedMs < cutoff && Delete(hosted, $"idle for {_limits.MachineIdleMinutes} minutes") is null)
            {
                deleted++;
            }
        }
        return deleted;
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

    private HostedMachine NewHosted(string name, string? owner, bool pinned, MachineConfig config, Tracepoints tracepoints) =>
        new(name, owner, pinned, config, tracepoints, (c, t) => BootMachine(c, t), _machineLogger, _time.GetUtcNow(), NowMs);

    [LoggerMessage(Level = LogLevel.Information, Message = "Machine {Machine} created for {Owner}: {Bytes} bytes of page state")]
    private static partial void LogCreated(ILogger logger, string machine, string owner, long bytes);

    [LoggerMessage(Level = LogLevel.Information, Message = "Machine {Machine} deleted: {Why}")]
    private static partial void LogDeleted(ILogger logger, string machine, string why);
}
