using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;
using PageAlloc.Api.Cluster;
using PageAlloc.Api.Infrastructure;

namespace PageAlloc.Api.Machines;

/// <summary>
/// Activates the default machine's grain when the host starts (the silo has started before: it is
/// registered first), so that it is booted before the first request: on this silo, or wherever the
/// cluster has it already. A machine that cannot be booted stops the start.
/// </summary>
public sealed class MachineBoot(IGrainFactory grains) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken) =>
        _ = await grains.GetGrain<IMachineGrain>(MachineRegistry.DefaultName).Locate().WaitAsync(cancellationToken)
            ?? throw new InvalidOperationException("The default machine's grain did not boot it.");

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}

/// <summary>
/// Deletes idle machines of this silo (Limits:MachineIdleMinutes, not pinned) once a minute, or
/// sooner when the idle time is shorter, so that machines a client forgot do not hold the memory
/// budget for ever. Every machine is active on some silo, so every silo sweeping its own covers all.
/// </summary>
public sealed class IdleMachineSweeper(MachineRegistry machines, ClusterMachines cluster, IOptions<LimitsOptions> limits, TimeProvider time) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (limits.Value.MachineIdleMinutes <= 0)
        {
            return;
        }
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(Math.Min(60, limits.Value.MachineIdleMinutes * 60 / 4.0)), time);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            await SweepAsync();
        }
    }

    /// <summary>Deletes this silo's idle machines now; returns how many.</summary>
    public async Task<int> SweepAsync()
    {
        var deleted = 0;
        foreach (var idle in machines.Idle())
        {
            if (await cluster.Delete(idle.Name, $"idle for {limits.Value.MachineIdleMinutes} minutes") is null)
            {
                deleted++;
            }
        }
        return deleted;
    }
}

/// <summary>Ready once the default machine has booted, on this silo or another the cluster reaches.</summary>
public sealed class MachineReadyCheck(IGrainFactory grains) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        try
        {
            var silo = await grains.GetGrain<IMachineGrain>(MachineRegistry.DefaultName).Locate().WaitAsync(TimeSpan.FromSeconds(5), cancellationToken);
            return silo is null ? HealthCheckResult.Unhealthy("The machine is booting.") : HealthCheckResult.Healthy($"The machine has booted (on silo {silo}).");
        }
        catch (Exception failure) when (failure is TimeoutException || ClusterFailures.IsUnavailable(failure) || failure is OrleansException)
        {
            return HealthCheckResult.Unhealthy("The default machine's silo cannot be reached: " + failure.GetType().Name);
        }
    }
}

/// <summary>A request arrived before its machine was booted: 503, try again shortly.</summary>
public sealed class MachineNotBootedException() : InvalidOperationException("The simulated machine is still booting.");
