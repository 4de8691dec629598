using Microsoft.AspNetCore.Diagnostics.HealthChecks;

namespace PageAlloc.Api.Endpoints;

/// <summary>/health/live (the process answers) and /health/ready (the machine has booted), as eShop's service defaults map them.</summary>
public static class HealthEndpoints
{
    public static IEndpointRouteBuilder MapHealth(this IEndpointRouteBuilder app)
    {
        app.MapHealthChecks("/health/live", new HealthCheckOptions { Predicate = _ => false }).AllowAnonymous();
        app.MapHealthChecks("/health/ready", new HealthCheckOptions { Predicate = check => check.Tags.Contains("ready") }).AllowAnonymous();
        // The first wave's health endpoint, kept as an alias of liveness (bench/http compares page calls with it).
        app.MapHealthChecks("/healthz", new HealthCheckOptions { Predicate = _ => false }).AllowAnonymous();
        return app;
    }
}
