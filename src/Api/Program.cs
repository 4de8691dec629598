using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Http.Timeouts;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;
using PageAlloc.Api.Cluster;
using PageAlloc.Api.Endpoints;
using PageAlloc.Api.Infrastructure;
using PageAlloc.Api.Machines;
using PageAlloc.Api.Observability;
using PageAlloc.Api.OpenApi;
using PageAlloc.Api.Security;
using PageAlloc.Domain.Model;

var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = ServiceHostDefaults.ContentRoot(args) });
builder.ListenOnDefaultUrlUnlessConfigured();
// Until the host has started, its "Hosting failed to start" error (a stack trace of 40 lines) is
// left to the one line the catch at the end prints; after that, the host logs as usual.
var hostStarted = false;
builder.Logging.AddFilter(StartupFailure.HostLogCategory, level => level >= LogLevel.Information && (hostStarted || level < LogLevel.Error));
// The silo's warnings wait for the same moment: until then it notes the GC mode, and a start that
// fails (a busy port) makes it warn, with stack traces, about the shutdown it was not ready for.
builder.Logging.AddFilter("Orleans", level => level >= (hostStarted ? LogLevel.Warning : LogLevel.Error));
// The page's files as the build describes them (wwwroot and its precompressed copies), in every
// environment: the framework enables this only in Development, and without it a build run with
// dotnet run offered gzip and br variants whose files it did not have, so browsers got empty answers.
// The published output has no such manifest, and this does nothing there.
builder.WebHost.UseStaticWebAssets();

// The default machine comes from the "Machine" section (appsettings.json holds the design's
// default). Every value is validated when the host starts: a bad one stops the process, named,
// before it listens. It is booted by a hosted service; /health/ready waits for it. Clients create
// more (POST /machines), bounded by the Limits section; idle ones are swept away.
builder.Services.AddPageAllocConfiguration();
// Every PageAlloc process is an Orleans silo; a machine is a grain (docs/scale-out.md). One silo on
// localhost unless "Orleans:Clustering" is Redis.
builder.AddPageAllocCluster();
builder.Services.AddSingleton(TimeProvider.System);
builder.Services.AddSingleton<MachineRegistry>();
builder.Services.AddSingleton<ClusterMachines>();
builder.Services.AddSingleton<ForwardedRequestRunner>();
builder.Services.AddSingleton<StreamRelays>();
builder.Services.AddSingleton<EventStreams>();
builder.Services.AddSingleton<PageAlloc.Api.Experiments.ExperimentRegistry>();
builder.Services.AddSingleton<PageAlloc.Api.Experiments.ExperimentTraces>();
builder.Services.AddHostedService<MachineBoot>();
builder.Services.AddHostedService<IdleMachineSweeper>();

// API keys, ownership and quotas: off unless "Security:ApiKeys" lists keys (docker-compose.yml does).
builder.Services.AddPageAllocSecurity(builder.Configuration);
var security = builder.Configuration.GetSection(SecurityOptions.Section).Get<SecurityOptions>() ?? new SecurityOptions();

// What one client may cost: connections, bodies, time, response sizes (LimitsOptions, bound above).
// Connections: ConnectionFairness holds them to Limits:MaxConcurrentConnections, each client to its
// share, and keeps Limits:HealthConnections of them for health probes (one check when a connection
// opens and closes). Kestrel's own MaxConcurrentConnections stays unset: it counts every connection
// alike, before any connection middleware, and logs a warning per refused connection.
builder.Services.AddSingleton<ConnectionFairness>();
builder.Services.AddOptions<KestrelServerOptions>().Configure<IOptions<LimitsOptions>, ConnectionFairness>((kestrel, limits, fairness) =>
{
    kestrel.AddServerHeader = false;
    kestrel.ConfigureEndpointDefaults(listen => listen.Use(next => connection => fairness.OnConnectionAsync(connection, next)));
    kestrel.Limits.MaxConcurrentUpgradedConnections = limits.Value.MaxConcurrentConnections;
    kestrel.Limits.KeepAliveTimeout = TimeSpan.FromSeconds(limits.Value.KeepAliveSeconds);
    kestrel.Limits.MaxRequestBodySize = limits.Value.PageCallBodyBytes; // endpoints that take more say so
});
builder.Services.AddRequestTimeouts();
builder.Services.AddOptions<RequestTimeoutOptions>().Configure<IOptions<LimitsOptions>>((timeouts, limits) =>
{
    timeouts.AddPolicy(TestsEndpoints.TestTimeout, new RequestTimeoutPolicy
    {
        Timeout = TimeSpan.FromSeconds(limits.Value.TestTimeoutSeconds),
        TimeoutStatusCode = StatusCodes.Status504GatewayTimeout,
    });
});

// JSON as the OpenAPI document describes it and nothing looser: camelCase members only, no
// unknown members, numbers as numbers, enums in their kebab-case spelling ("per-page").
builder.Services.ConfigureHttpJsonOptions(o =>
{
    o.SerializerOptions.PropertyNameCaseInsensitive = false;
    o.SerializerOptions.NumberHandling = JsonNumberHandling.Strict;
    o.SerializerOptions.UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow;
    o.SerializerOptions.Converters.Add(new StrictEnumConverterFactory());
    o.SerializerOptions.TypeInfoResolverChain.Insert(0, ApiJsonContext.Default);
});

// Contract validation (.NET 10), ProblemDetails for every error, 400 for unreadable requests.
builder.Services.AddValidation();
builder.Services.AddProblemDetails(o => o.CustomizeProblemDetails = c => ProblemCatalog.Complete(c.ProblemDetails, c.HttpContext));
builder.Services.AddExceptionHandler<ProblemExceptionHandler>();
builder.Services.Configure<RouteHandlerOptions>(o => o.ThrowOnBadRequest = true); // so the handler can say what was wrong

// Liveness: the process answers (no check). Readiness: the machine has booted.
builder.Services.AddHealthChecks()
    .AddCheck<MachineReadyCheck>("machine-booted", tags: ["ready"]);

// POST /tests/page_alloc_high_order boots a whole machine and spins for seconds: one at a time.
// GET /metrics reads every machine's counters: a few scrapes a second (Limits:MetricsScrapesPerSecond).
// Every 429 says when to come back (Retry-After: the limiter's own figure, else 1 s).
builder.Services.AddRateLimiter(o =>
{
    o.RejectionStatusCode = StatusCodes.Status429TooManyRequests;
    o.OnRejected = (rejected, _) =>
    {
        var retryAfter = rejected.Lease.TryGetMetadata(System.Threading.RateLimiting.MetadataName.RetryAfter, out var after)
            ? Math.Max(1, (int)Math.Ceiling(after.TotalSeconds)) : 1;
        rejected.HttpContext.Response.Headers.RetryAfter = retryAfter.ToString(System.Globalization.CultureInfo.InvariantCulture);
        UnreadBody.CloseConnection(rejected.HttpContext);
        return ValueTask.CompletedTask;
    };
    o.GlobalLimiter = SecuritySetup.PerKeyLimiter(security);
    o.AddConcurrencyLimiter(TestsEndpoints.OneAtATime, l =>
    {
        l.PermitLimit = 1;
        l.QueueLimit = 0;
    });
});
builder.Services.AddOptions<Microsoft.AspNetCore.RateLimiting.RateLimiterOptions>().Configure<IOptions<LimitsOptions>>((o, limits) =>
    o.AddFixedWindowLimiter(ObservabilitySetup.ScrapePolicy, l =>
    {
        l.PermitLimit = limits.Value.MetricsScrapesPerSecond;
        l.Window = TimeSpan.FromSeconds(1);
        l.QueueLimit = 0;
    }));

builder.Services.AddPageAllocOpenApi();

// Metrics: the PageAlloc meter (vmstat, pagetypeinfo, lock_stat) with OpenTelemetry; GET /metrics.
builder.Services.AddPageAllocObservability(builder.Configuration);

// Building and mapping resolve the validated options too (the metrics, the machines), so a bad
// value can stop the start here as well as in Run: both are inside the try.
try
{
    var app = builder.Build();
    app.Lifetime.ApplicationStarted.Register(() => hostStarted = true);

    app.Use(HealthOnlyConnection.InvokeAsync); // a feature lookup per request: is this a health slot's connection?
    app.UseExceptionHandler();
    app.UseStatusCodePages();
    // "/" is the page: rewritten to "/index.html" before routing picks an endpoint, so its static asset
    // answers it. (UseDefaultFiles would do this by asking the file system on every GET.)
    app.Use((context, next) =>
    {
        if (context.Request.Path == "/")
        {
            context.Request.Path = "/index.html";
        }
        return next(context);
    });
    app.UseRouting();
    // Swagger UI and the document are on unless "Swagger:Enabled" is false; open to all, like health.
    // Both answer only under /swagger (their default route and prefix): a branch for those paths
    // keeps their per-request path checks off every page call.
    if (app.Configuration.GetValue("Swagger:Enabled", defaultValue: true))
    {
        app.UseWhen(context => context.Request.Path.StartsWithSegments("/swagger"), swagger =>
        {
            swagger.UseSwagger();
            swagger.UseSwaggerUI();
        });
    }
    // The page at / (wwwroot: static HTML, CSS and JS modules, no build step); open to all, like health.
    app.MapStaticAssets().AllowAnonymous();
    app.Use(JsonOnlyWrites.InvokeAsync);
    if (security.Enabled)
    {
        app.UseAuthentication();
        app.UseAuthorization();
    }
    // Only endpoints that name a timeout policy have a timeout (there is no default policy): the
    // middleware runs for them, not for every page call.
    app.UseWhen(context => context.GetEndpoint()?.Metadata is { } metadata
            && (metadata.GetMetadata<Microsoft.AspNetCore.Http.Timeouts.RequestTimeoutAttribute>() is not null
                || metadata.GetMetadata<Microsoft.AspNetCore.Http.Timeouts.RequestTimeoutPolicy>() is not null),
        timeouts => timeouts.UseRequestTimeouts());
    app.UseRateLimiter();
    // Last before the endpoint: a request for a machine on another silo is sent to it (its grain).
    app.Use(MachineForwarding.InvokeAsync);
    app.MapHealth();
    app.MapPageAllocMetrics();

    // Every machine-scoped route twice, with one code path: under /machines/{machine}/ (in the
    // OpenAPI document), and at today's paths, which name the default machine (aliases, left out of
    // the document). A request's machine is resolved once, as it is bound (MachineScope).
    app.MapMachines();
    app.MapMachineScoped(app.MapGroup("/machines/{machine}"));
    app.MapMachineScoped(app.MapGroup("/").AsDefaultMachineAliases());

    app.Run();
    return 0;
}
catch (Exception failure) when (StartupFailure.ConfigurationProblems(failure) is { } problems)
{
    // A bad configuration value: name every one and exit before listening, without a stack trace.
    Console.Error.WriteLine("PageAlloc cannot start, its configuration is invalid:");
    foreach (var problem in problems)
    {
        Console.Error.WriteLine("  " + problem);
    }
    return 2;
}
catch (Exception failure) when (!hostStarted && failure is not HostAbortedException)
{
    // (HostAbortedException is how WebApplicationFactory stops this entry point once it has the host.)
    // Any other start failure (a busy port, an address it may not bind): one line, and the host's
    // own stack trace was held back (the filter above).
    Console.Error.WriteLine("PageAlloc cannot start: " + StartupFailure.Describe(failure));
    return 1;
}
