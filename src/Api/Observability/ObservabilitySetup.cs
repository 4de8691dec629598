using System.Reflection;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;

namespace PageAlloc.Api.Observability;

/// <summary>
/// Metrics as eShop's service defaults wire them: OpenTelemetry with ASP.NET Core and runtime
/// instrumentation and the PageAlloc meter, served at GET /metrics in the Prometheus text format,
/// and exported over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set.
/// </summary>
public static class ObservabilitySetup
{
    /// <summary>
    /// The runtime's instruments (meter System.Runtime) named "*.count", the semantic conventions'
    /// name for how many things there are now (an UpDownCounter). The Prometheus exporter makes each
    /// a gauge named "*_count", a suffix Prometheus reserves for a histogram's or summary's sample
    /// count, so promtool check metrics rejects them. A view renames each to the plural of what it
    /// counts, the way Prometheus names a number of things (go_goroutines, go_threads,
    /// process_open_fds) and the semantic conventions allow when the unit is a {thing}: the values,
    /// descriptions and units stay. Views apply to the whole meter provider, so OTLP gets these
    /// names too.
    /// dotnet.thread_pool.thread.count is a counter on .NET 10.0 (dotnet_thread_pool_thread_count_total,
    /// promtool accepts it); that is a runtime bug (dotnet/runtime#112077, #126167) whose fix makes it
    /// an UpDownCounter, a "_count" gauge once a runtime with the fix rolls forward, so it is renamed
    /// now too.
    /// </summary>
    private static readonly Dictionary<string, string> RuntimeRenames = new(StringComparer.Ordinal)
    {
        ["dotnet.assembly.count"] = "dotnet.assemblies",                     // dotnet_assemblies
        ["dotnet.process.cpu.count"] = "dotnet.process.cpus",                // dotnet_process_cpus
        ["dotnet.timer.count"] = "dotnet.timers",                            // dotnet_timers
        ["dotnet.thread_pool.thread.count"] = "dotnet.thread_pool.threads",  // dotnet_thread_pool_threads_total for now
    };

    /// <summary>The resource's service.name, unless OTEL_SERVICE_NAME (or OTEL_RESOURCE_ATTRIBUTES) says otherwise.</summary>
    public const string ServiceName = "PageAlloc";

    /// <summary>The assembly's informational version: the project's version and the commit it was built from.</summary>
    private static readonly string? ServiceVersion =
        typeof(ObservabilitySetup).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion;

    public static IServiceCollection AddPageAllocObservability(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddSingleton<PageAllocMetrics>();
        var otlp = !string.IsNullOrWhiteSpace(configuration["OTEL_EXPORTER_OTLP_ENDPOINT"]);
        services.AddOpenTelemetry()
            // service.name "PageAlloc" (target_info's service_name) instead of the SDK's
            // "unknown_service:PageAlloc.Api", and the build's version. The default resource reads
            // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES before this runs, and a later resource
            // wins a merge, so AddService alone would override them: reading them again after it
            // lets a deployment still name the service (OTEL_SERVICE_NAME over OTEL_RESOURCE_ATTRIBUTES).
            .ConfigureResource(resource => resource
                .AddService(ServiceName, serviceVersion: ServiceVersion)
                .AddEnvironmentVariableDetector())
            .WithMetrics(metrics =>
            {
                metrics.AddMeter(PageAllocMetrics.MeterName)
                    .AddAspNetCoreInstrumentation()
                    .AddRuntimeInstrumentation()
                    .AddView(instrument => instrument.Meter.Name == "System.Runtime" && RuntimeRenames.TryGetValue(instrument.Name, out var name)
                        ? new MetricStreamConfiguration { Name = name }
                        : null)
                    .AddPrometheusExporter();
                if (otlp)
                {
                    metrics.AddOtlpExporter();
                }
            });
        return services;
    }

    /// <summary>The rate-limiter policy of GET /metrics: Limits:MetricsScrapesPerSecond, service-wide.</summary>
    public const string ScrapePolicy = "metrics-scrapes";

    /// <summary>
    /// GET /metrics (Prometheus text), at most Limits:MetricsScrapesPerSecond scrapes a second (429
    /// beyond); open to all like health unless "Metrics:RequireKey" is true (with API keys, a scrape
    /// then carries one). The meter is created on first use.
    /// </summary>
    public static IEndpointRouteBuilder MapPageAllocMetrics(this IEndpointRouteBuilder app)
    {
        _ = app.ServiceProvider.GetRequiredService<PageAllocMetrics>(); // creates the meter and its instruments
        var metrics = app.MapPrometheusScrapingEndpoint("/metrics").RequireRateLimiting(ScrapePolicy);
        if (!app.ServiceProvider.GetRequiredService<IConfiguration>().GetValue("Metrics:RequireKey", defaultValue: false))
        {
            metrics.AllowAnonymous();
        }
        return app;
    }
}
