using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;
using PageAlloc.Api.Infrastructure;

namespace PageAlloc.Api.Machines;

/// <summary>Boots the default machine when the host starts; a machine that cannot be booted stops the start.</summary>
public sealed class MachineBoot(MachineRegistry machines) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        machines.Default.Reset();
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}

/// <summary>
/// Deletes idle machines (Limits:MachineIdleMinutes, not pinned) once a minute, or sooner when the
/// idle time is shorter, so that machines a client forgot do not hold the memory budget for ever.
/// </summary>
public sealed class IdleMachineSweeper(MachineRegistry machines, IOptions<LimitsOptions> limits, TimeProvider time) : BackgroundService
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
            machines.DeleteIdle();
        }
    }
}

/// <summary>Ready once the default machine has booted.</summary>
public sealed class MachineReadyCheck(MachineRegistry machines) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(machines.Default.IsBooted ? HealthCheckResult.Healthy("The machine has booted.") : HealthCheckResult.Unhealthy("The machine is booting."));
}

/// <summary>A request arrived before its machine was booted: 503, try again shortly.</summary>
public sealed class MachineNotBootedException() : InvalidOperationException("The simulated machine is still booting.");
