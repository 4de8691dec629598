using Microsoft.Extensions.Options;
using PageAlloc.Domain.Allocator;
using PageAlloc.Domain.Model;
using PageAlloc.Domain.Tracing;

namespace PageAlloc.Api.Infrastructure;

/// <summary>
/// Holds the served machine. It is booted once at start (<see cref="MachineBoot"/>) and again by
/// POST /reset, which swaps in a freshly booted one; requests already running finish on the machine
/// they started with, and the old machine is then garbage. Resets are serialised, so at most two
/// machines exist at once (the one serving and the one booting), however many clients reset.
/// </summary>
public sealed partial class MachineHost(IOptions<MachineConfig> options, ILogger<MachineHost> logger)
{
    private readonly Lock _bootLock = new();
    private Machine? _machine;
    private long _boots;

    public MachineConfig Config => options.Value;

    /// <summary>
    /// The tracepoints of every machine this host boots: one instance, so that a listener of
    /// GET /events stays attached across resets.
    /// </summary>
    public Tracepoints Tracepoints { get; } = new();

    /// <summary>How a machine is built (from the configuration and <see cref="Tracepoints"/>); tests swap it to watch boots.</summary>
    public Func<MachineConfig, Tracepoints, Machine> BootMachine { get; init; } = (config, tracepoints) => new Machine(config, tracepoints);

    /// <summary>True once the first boot has finished (the readiness check).</summary>
    public bool IsBooted => Volatile.Read(ref _machine) is not null;

    /// <summary>The served machine; before the first boot, a <see cref="MachineNotBootedException"/> (503).</summary>
    public Machine Machine => Volatile.Read(ref _machine) ?? throw new MachineNotBootedException();

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
            var machine = BootMachine(Config, Tracepoints);
            Volatile.Write(ref _machine, machine);
            Interlocked.Increment(ref _boots);
            LogBoot(machine, _boots == 1 ? "Booted" : "Reset: rebooted");
            return machine;
        }
    }

    /// <summary>
    /// Boots a fresh machine (of <paramref name="config"/>, or the served configuration), lets
    /// <paramref name="prepare"/> shape it while nobody else can see it, and serves it only when that
    /// succeeded; otherwise the served machine stays as it was. A later POST /reset boots the served
    /// configuration again.
    /// </summary>
    public PageError? ResetWith(Func<Machine, PageError?> prepare, MachineConfig? config = null)
    {
        lock (_bootLock)
        {
            var machine = BootMachine(config ?? Config, Tracepoints);
            if (prepare(machine) is { } error)
            {
                return error;
            }
            Volatile.Write(ref _machine, machine);
            Interlocked.Increment(ref _boots);
            LogBoot(machine, "Reset (prepared): rebooted");
            return null;
        }
    }

    /// <summary>The machine just served: its zones with their spans and watermarks, cpus and min_free_kbytes.</summary>
    private void LogBoot(Machine machine, string how)
    {
        if (logger.IsEnabled(LogLevel.Information))
        {
            var layout = string.Join(", ", machine.Zones.Select(z => $"{z.Key} pfn 0x{z.StartPfn:x}+{z.SpannedPages} (min/low/high {z.Watermarks.Min}/{z.Watermarks.Low}/{z.Watermarks.High})"));
            LogBooted(logger, how, machine.Zones.Count, machine.Cpus, machine.MinFreeKbytes, layout);
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "{How} a machine: {Zones} zones, {Cpus} cpus, min_free_kbytes {MinFreeKbytes}: {Layout}")]
    private static partial void LogBooted(ILogger logger, string how, int zones, int cpus, long minFreeKbytes, string layout);

    /// <summary>
    /// Logs an allocation refused for want of memory, as warn_alloc() reports one, at Debug: clients
    /// cause these at will, so they are not warnings of the service's.
    /// </summary>
    public void OnAllocationRefused(PageError error, int order, GfpFlags gfp, Zone zone)
    {
        if (error.Kind is PageErrorKind.InjectedFailure)
        {
            LogInjectedFailure(order, gfp, zone);
            return;
        }
        if (error.Kind is not (PageErrorKind.OutOfMemory or PageErrorKind.MemcgMax))
        {
            return;
        }
        if (logger.IsEnabled(LogLevel.Debug))
        {
            var kind = ProblemCatalog.Of(error.Kind).Kind;
            var mask = Gfp.Format(gfp);
            LogAllocationFailure(logger, kind, order, mask, zone.Key, error.Detail);
        }
    }

    /// <summary>fail_dump(): with verbose 1 one line per injected failure, with verbose 2 the call too (the kernel dumps the stack).</summary>
    private void LogInjectedFailure(int order, GfpFlags gfp, Zone zone)
    {
        var f = Machine.FailPageAlloc;
        var verbose = f.Verbose;
        if (verbose == 0 || !logger.IsEnabled(LogLevel.Warning))
        {
            return;
        }
        var call = verbose >= 2 ? $" Call: alloc_pages({Gfp.Format(gfp)}, {order}) on zone {zone.Key}." : "";
        LogFaultInjection(logger, f.Interval, f.Probability, f.Space, f.Times, call);
    }

    [LoggerMessage(Level = LogLevel.Warning,
        Message = "FAULT_INJECTION: forcing a failure. name fail_page_alloc, interval {Interval}, probability {Probability}, space {Space}, times {Times}.{Call}")]
    private static partial void LogFaultInjection(ILogger logger, long interval, int probability, int space, int times, string call);

    [LoggerMessage(Level = LogLevel.Debug, Message = "alloc_pages failed ({Kind}): order {Order}, gfp {Gfp}, zone {Zone}: {Detail}")]
    private static partial void LogAllocationFailure(ILogger logger, string kind, int order, string gfp, string zone, string detail);
}

/// <summary>Boots the served machine when the host starts; a machine that cannot be booted stops the start.</summary>
public sealed class MachineBoot(MachineHost host) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        host.Reset();
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}

/// <summary>A request arrived before the machine was booted: 503, try again shortly.</summary>
public sealed class MachineNotBootedException() : InvalidOperationException("The simulated machine is still booting.");
