using PageAlloc.Api.Infrastructure;
using PageAlloc.Domain.Allocator;
using PageAlloc.Domain.Model;
using PageAlloc.Domain.Tracing;

namespace PageAlloc.Api.Machines;

/// <summary>
/// One machine the service serves, as a resource: its name, owner and lifetime, and the simulated
/// machine it holds now. A reset (POST .../reset, an import, the fragmenter) swaps in a freshly
/// booted <see cref="Machine"/>; requests already running finish on the one they started with
/// (a request resolves its machine once, <see cref="MachineScope"/>), and the old one is then
/// garbage. Resets of one machine are serialised, so at most two of its machines exist at once.
/// Its <see cref="Tracepoints"/> outlive its resets, so a GET .../events stays attached, and carry
/// only this machine's events.
/// </summary>
public sealed partial class HostedMachine
{
    private readonly Lock _bootLock = new();
    private readonly Func<MachineConfig, Tracepoints, Machine> _boot;
    private readonly ILogger _logger;
    private Machine? _machine;
    private long _boots;
    private long _lastUsedMs;

    /// <summary>Held by a boot or resize (<see cref="ResetWith"/>); the registry takes it before its own lock to delete.</summary>
    internal Lock BootLock => _bootLock;

    internal HostedMachine(string name, string? owner, bool pinned, MachineConfig config, Tracepoints tracepoints, Func<MachineConfig, Tracepoints, Machine> boot,
        ILogger logger, DateTimeOffset createdAt, long nowMs)
    {
        Tracepoints = tracepoints;
        Name = name;
        Owner = owner;
        Pinned = pinned;
        Config = config;
        _boot = boot;
        _logger = logger;
        CreatedAt = createdAt;
        _lastUsedMs = nowMs;
        StateBytes = config.StateBytes();
        Gate = new MachineGate();
        Durability = new MachineDurability(Gate);
    }

    /// <summary>The machine's name, its id in /machines/{machine}.</summary>
    public string Name { get; }

    /// <summary>The API key that created it; null for a machine everybody shares (default, or any machine when keys are off).</summary>
    public string? Owner { get; }

    /// <summary>Pinned machines are never deleted for being idle (default always is).</summary>
    public bool Pinned { get; }

    public DateTimeOffset CreatedAt { get; }

    /// <summary>What a reset boots: the configuration the machine was created with (or restored from).</summary>
    public MachineConfig Config { get; }

    /// <summary>The page state this machine is counted for against Limits:MachineMemoryBytes, in bytes.</summary>
    public long StateBytes { get; private set; }

    /// <summary>This machine's kmem tracepoints, across its resets.</summary>
    public Tracepoints Tracepoints { get; }

    /// <summary>Page calls enter it shared; a snapshot or fork, exclusive.</summary>
    public MachineGate Gate { get; }

    /// <summary>Its recovery point: the last snapshot in grain storage, and how far the machine is past it.</summary>
    public MachineDurability Durability { get; }

    private volatile bool _retired;

    /// <summary>
    /// True once its activation has taken its last snapshot (the silo stops, or Orleans moves it): a
    /// change that reaches it after that would be lost, so it is refused (503, try again), and the
    /// retry reaches the machine's next activation.
    /// </summary>
    public bool Retired => _retired;

    /// <summary>Marks the machine retired; called with the gate held exclusively, so no change is inside.</summary>
    public void Retire() => _retired = true;

    private int _contigScan;

    /// <summary>
    /// Takes the machine's one alloc_contig_pages slot (a scan of a big zone can take a core for a
    /// minute): false when a scan runs already. <see cref="EndContigScan"/> gives it back.
    /// </summary>
    public bool TryStartContigScan() => Interlocked.CompareExchange(ref _contigScan, 1, 0) == 0;

    public void EndContigScan() => Volatile.Write(ref _contigScan, 0);

    private long _abandonedAllocations;

    /// <summary>Allocations freed again because their client hung up before the answer was written (the metric pagealloc.allocations.abandoned).</summary>
    public long AbandonedAllocations => Interlocked.Read(ref _abandonedAllocations);

    public void CountAbandonedAllocation() => Interlocked.Increment(ref _abandonedAllocations);

    /// <summary>True once its first boot has finished.</summary>
    public bool IsBooted => Volatile.Read(ref _machine) is not null;

    /// <summary>The machine served now; before the first boot, a <see cref="MachineNotBootedException"/> (503).</summary>
    public Machine Machine => Volatile.Read(ref _machine) ?? throw new MachineNotBootedException();

    /// <summary>When a request last named this machine, in <see cref="TimeProvider"/> milliseconds.</summary>
    public long LastUsedMs => Volatile.Read(ref _lastUsedMs);

    /// <summary>
    /// Notes a use. Written at most once a second, so that concurrent page calls on one machine do not
    /// all write one cache line.
    /// </summary>
    public void Touch(long nowMs)
    {
        if (nowMs - Volatile.Read(ref _lastUsedMs) >= 1000)
        {
            Volatile.Write(ref _lastUsedMs, nowMs);
        }
    }

    /// <summary>Serves an existing machine (a restored snapshot or a fork, built with <see cref="Tracepoints"/>) as this machine's first.</summary>
    public void Serve(Machine machine, string how)
    {
        lock (_bootLock)
        {
            Volatile.Write(ref _machine, machine);
            Interlocked.Increment(ref _boots);
            LogBoot(machine, how);
        }
    }

    /// <summary>
    /// Boots a fresh machine and serves it. A call that waited while another booted returns that
    /// machine instead of booting again: it was booted after this call was made, so it is as fresh.
    /// </summary>
    public Machine Reset()
    {
        var seen = Interlocked.Read(ref _boots);
        lock (_bootLock)
        {
            if (_boots != seen && _machine is { } fresh)
            {
                return fresh;
            }
            var machine = _boot(Config, Tracepoints);
            Volatile.Write(ref _machine, machine);
            Interlocked.Increment(ref _boots);
            Gate.CountOperation();
            LogBoot(machine, _boots == 1 ? "Booted" : "Reset: rebooted");
            return machine;
        }
    }

    /// <summary>
    /// Boots a fresh machine (of <paramref name="config"/>, or <see cref="Config"/>), lets
    /// <paramref name="prepare"/> shape it while nobody else can see it, and serves it only when that
    /// succeeded; otherwise the served machine stays as it was. <paramref name="reserve"/> is asked
    /// first whether a machine of another size fits the memory budget. A later reset boots
    /// <see cref="Config"/> again.
    /// </summary>
    public PageError? ResetWith(Func<Machine, PageError?> prepare, MachineConfig? config = null, Func<long, PageError?>? reserve = null)
    {
        lock (_bootLock)
        {
            var bytes = (config ?? Config).StateBytes();
            if (bytes != StateBytes && reserve?.Invoke(bytes - StateBytes) is { } refused)
            {
                return refused;
            }
            var machine = _boot(config ?? Config, Tracepoints);
            if (prepare(machine) is { } error)
            {
                reserve?.Invoke(StateBytes - bytes); // give back what was taken for it
                return error;
            }
            StateBytes = bytes;
            Volatile.Write(ref _machine, machine);
            Interlocked.Increment(ref _boots);
            Gate.CountOperation();
            LogBoot(machine, "Reset (prepared): rebooted");
            return null;
        }
    }

    /// <summary>The machine just served: its zones with their spans and watermarks, cpus and min_free_kbytes.</summary>
    private void LogBoot(Machine machine, string how)
    {
        if (_logger.IsEnabled(LogLevel.Information))
        {
            var layout = string.Join(", ", machine.Zones.Select(z => $"{z.Key} pfn 0x{z.StartPfn:x}+{z.SpannedPages} (min/low/high {z.Watermarks.Min}/{z.Watermarks.Low}/{z.Watermarks.High})"));
            LogBooted(_logger, how, Name, machine.Zones.Count, machine.Cpus, machine.MinFreeKbytes, layout);
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "{How} machine {Machine}: {Zones} zones, {Cpus} cpus, min_free_kbytes {MinFreeKbytes}: {Layout}")]
    private static partial void LogBooted(ILogger logger, string how, string machine, int zones, int cpus, long minFreeKbytes, string layout);

    /// <summary>
    /// Logs an allocation refused for want of memory, as warn_alloc() reports one, at Debug: clients
    /// cause these at will, so they are not warnings of the service's.
    /// </summary>
    public void OnAllocationRefused(Machine machine, PageError error, int order, GfpFlags gfp, Zone zone)
    {
        if (error.Kind is PageErrorKind.InjectedFailure)
        {
            LogInjectedFailure(machine, order, gfp, zone);
            return;
        }
        if (error.Kind is not (PageErrorKind.OutOfMemory or PageErrorKind.MemcgMax))
        {
            return;
        }
        if (_logger.IsEnabled(LogLevel.Debug))
        {
            var kind = ProblemCatalog.Of(error.Kind).Kind;
            var mask = Gfp.Format(gfp);
            LogAllocationFailure(_logger, Name, kind, order, mask, zone.Key, error.Detail);
        }
    }

    /// <summary>fail_dump(): with verbose 1 one line per injected failure, with verbose 2 the call too (the kernel dumps the stack).</summary>
    private void LogInjectedFailure(Machine machine, int order, GfpFlags gfp, Zone zone)
    {
        var f = machine.FailPageAlloc;
        if (f.Verbose == 0 || !_logger.IsEnabled(LogLevel.Warning))
        {
            return;
        }
        var call = f.Verbose >= 2 ? $" Call: alloc_pages({Gfp.Format(gfp)}, {order}) on zone {zone.Key}." : "";
        LogFaultInjection(_logger, Name, f.Interval, f.Probability, f.Space, f.Times, call);
    }

    [LoggerMessage(Level = LogLevel.Warning,
        Message = "FAULT_INJECTION: forcing a failure on machine {Machine}. name fail_page_alloc, interval {Interval}, probability {Probability}, space {Space}, times {Times}.{Call}")]
    private static partial void LogFaultInjection(ILogger logger, string machine, long interval, int probability, int space, int times, string call);

    [LoggerMessage(Level = LogLevel.Debug, Message = "alloc_pages failed on machine {Machine} ({Kind}): order {Order}, gfp {Gfp}, zone {Zone}: {Detail}")]
    private static partial void LogAllocationFailure(ILogger logger, string machine, string kind, int order, string gfp, string zone, string detail);
}
