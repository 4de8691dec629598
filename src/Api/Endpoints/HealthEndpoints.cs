using Microsoft.AspNetCore.Diagnostics.HealthChecks;

namespace PageAlloc.Api.Endpoints;

/// <summary>/health/live (the process answers) and /health/ready (the machine has booted), as eShop's service defaults map them.</summary>
public static class HealthEndpoints
{
    public static IEndpointRouteBuilder MapHealth(this IEndpointRouteBuilder app)
    {
        app.MapHealthChecks("/health/live", new HealthCheckOptions { Predicate = check => check.Tags.Contains("live") }).AllowAnonymous();
        app.MapHealthChecks("/health/ready", new HealthCheckOptions { Predicate = check => check.Tags.Contains("ready") }).AllowAnonymous();
        // The first wave's health endpoint, kept for the container health check and bench/http: readiness.
        app.MapHealthChecks("/healthz", new HealthCheckOptions { Predicate = check => check.Tags.Contains("ready") }).AllowAnonymous();
        return app;
    }
}
