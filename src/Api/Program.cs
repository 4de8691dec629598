using System.Text.Json;
using Microsoft.AspNetCore.RateLimiting;
using System.Text.Json.Serialization;
using PageAlloc.Api.Endpoints;
using PageAlloc.Api.Infrastructure;
using PageAlloc.Domain.Model;

var builder = WebApplication.CreateBuilder(args);

// The simulated machine comes from the "Machine" section (appsettings.json holds design.md's
// default); a bad configuration stops the service at start with every problem listed.
var config = builder.Configuration.GetSection("Machine").Get<MachineConfig>() ?? MachineConfig.Default();
if (config.Nodes.Count == 0)
{
    config.Nodes = MachineConfig.Default().Nodes;
}
var problems = config.Validate();
if (problems.Count > 0)
{
    throw new InvalidOperationException("Invalid Machine configuration: " + string.Join(" ", problems));
}
builder.Services.AddSingleton(new MachineHost(config));

// Enums travel as kebab-case strings ("per-page", "movable"); camelCase properties.
builder.Services.ConfigureHttpJsonOptions(o =>
{
    o.SerializerOptions.Converters.Add(new JsonStringEnumConverter(JsonNamingPolicy.KebabCaseLower));
    o.SerializerOptions.TypeInfoResolverChain.Insert(0, ApiJsonContext.Default);
});

// Contract validation (.NET 10), ProblemDetails for every error, 400 for unreadable requests.
builder.Services.AddValidation();
builder.Services.AddProblemDetails();
builder.Services.AddExceptionHandler<BadRequestExceptionHandler>();
builder.Services.Configure<RouteHandlerOptions>(o => o.ThrowOnBadRequest = true); // so the handler can say what was wrong
builder.Services.AddHealthChecks();

// POST /tests/page_alloc_high_order boots a whole machine and spins for seconds: one at a time.
builder.Services.AddRateLimiter(o =>
{
    o.RejectionStatusCode = StatusCodes.Status429TooManyRequests;
    o.AddConcurrencyLimiter(TestsEndpoints.OneAtATime, l =>
    {
        l.PermitLimit = 1;
        l.QueueLimit = 0;
    });
});

builder.Services.AddEndpointsApiExplorer();
builder.Services.AddSwaggerGen(o =>
{
    o.SwaggerDoc("v1", new() { Title = "PageAlloc", Version = "v1", Description = "The Linux page allocator, simulated and served over HTTP." });
    o.SupportNonNullableReferenceTypes();
    o.SchemaFilter<RequestExamplesSchemaFilter>();
    // Zones first, then the calls on pages, then machine-wide views.
    string[] tagOrder = ["Zones", "Pages", "Machine", "Proc", "Tests"];
    o.OrderActionsBy(api =>
    {
        var tags = api.ActionDescriptor.EndpointMetadata.OfType<Microsoft.AspNetCore.Http.Metadata.ITagsMetadata>().FirstOrDefault()?.Tags;
        var rank = tags is { Count: > 0 } ? Array.IndexOf(tagOrder, tags[0]) : tagOrder.Length;
        return $"{rank:D2} {api.RelativePath}";
    });
});

var app = builder.Build();

app.UseExceptionHandler();
app.UseStatusCodePages();
app.UseRateLimiter();

app.UseSwagger();
app.UseSwaggerUI();
app.MapGet("/", () => TypedResults.Redirect("/swagger")).ExcludeFromDescription();
app.MapHealthChecks("/healthz");

app.MapZones();
app.MapMachine();
app.MapTests();

app.Run();
