using OpenTelemetry.Metrics;

namespace PageAlloc.Api.Observability;

/// <summary>
/// Metrics as eShop's service defaults wire them: OpenTelemetry with ASP.NET Core and runtime
/// instrumentation and the PageAlloc meter, served at GET /metrics in the Prometheus text format,
/// and exported over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set.
/// </summary>
public static class ObservabilitySetup
{
    public static IServiceCollection AddPageAllocObservability(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddSingleton<PageAllocMetrics>();
        var otlp = !string.IsNullOrWhiteSpace(configuration["OTEL_EXPORTER_OTLP_ENDPOINT"]);
        services.AddOpenTelemetry().WithMetrics(metrics =>
        {
            metrics.AddMeter(PageAllocMetrics.MeterName)
                .AddAspNetCoreInstrumentation()
                .AddRuntimeInstrumentation()
                .AddPrometheusExporter();
            if (otlp)
            {
                metrics.AddOtlpExporter();
            }
        });
        return services;
    }

    /// <summary>GET /metrics (Prometheus text), open to all like health; the meter is created on first use.</summary>
    public static IEndpointRouteBuilder MapPageAllocMetrics(this IEndpointRouteBuilder app)
    {
        _ = app.ServiceProvider.GetRequiredService<PageAllocMetrics>(); // creates the meter and its instruments
        app.MapPrometheusScrapingEndpoint("/metrics").AllowAnonymous();
        return app;
    }
}
