using System.Text.Json.Nodes;
using Microsoft.OpenApi;
using PageAlloc.Api.Infrastructure;
using Swashbuckle.AspNetCore.SwaggerGen;

namespace PageAlloc.Api.OpenApi;

/// <summary>
/// The document-wide parts: the server (relative, so Swagger UI calls whichever host served it), the
/// tags in the seed flow's order with what each holds, a contact, and the problem schema: the
/// framework's generic ProblemDetails replaced by the one the service writes, whose type and kind
/// list every kind in <see cref="ProblemCatalog"/>.
/// </summary>
public sealed class DocumentShapeFilter : IDocumentFilter
{
    /// <summary>The tags, in the order Swagger UI shows them, with what each holds.</summary>
    public static readonly (string Name, string Description)[] Tags =
    [
        ("Pages", "The allocator's calls on pages in one zone, in the seed's flow: alloc_pages, split_page, free_contig_range; then the other frees, references, HWPoison, one page's state, pcp drains and the zone's counters."),
        ("Zones", "The machine's zones: sizes, watermarks, lowmem reserve, pcp high and batch."),
        ("Machine", "Machine-wide counters, and reset (reboot the simulated machine)."),
        ("Machines", "Simulated machines as resources, each of its own shape: create one (from a shape, or by restoring a snapshot), list, delete, "
            + "snapshot and fork. Every route above and below is a machine's, under /machines/{machine}/; default is the configured machine, "
            + "whose routes are also served without that prefix (POST /zones/Normal/alloc_pages is POST /machines/default/zones/Normal/alloc_pages)."),
        ("Proc", "/proc/buddyinfo, pagetypeinfo, zoneinfo and vmstat in the kernel's own text formats."),
        ("Tests", "The seed's in-kernel test, run on a private machine."),
        ("Experiments", "One workload (the seed loop, vmalloc, LoadGen's mix, a real trace) on forks of the machine, a fork per variant "
            + "(free strategy, min_free_kbytes, fault injection) and repeat, side by side: progress as Server-Sent Events, timelines as JSON or CSV."),
        ("Events", "The kmem tracepoints as a live stream, as perf and ftrace show them."),
        ("Fault injection", "fail_page_alloc: allocations failed on purpose, set at run time through its debugfs files."),
    ];

    public void Apply(OpenApiDocument swaggerDoc, DocumentFilterContext context)
    {
        swaggerDoc.Servers = [new OpenApiServer { Url = "/", Description = "The service that serves this document" }];
        swaggerDoc.Info.Contact = new OpenApiContact { Name = "PageAlloc maintainers" };
        swaggerDoc.Tags = new HashSet<OpenApiTag>(Tags.Select(t => new OpenApiTag { Name = t.Name, Description = t.Description }));
        if (swaggerDoc.Components?.Schemas is { } schemas && schemas.ContainsKey(nameof(Microsoft.AspNetCore.Mvc.ProblemDetails)))
        {
            schemas[nameof(Microsoft.AspNetCore.Mvc.ProblemDetails)] = ProblemSchema();
        }
    }

    private static OpenApiSchema ProblemSchema() => new()
    {
        Type = JsonSchemaType.Object,
        Description = "An RFC 9457 problem. type and kind name the same kind of failure (kind is type's last segment); "
            + "detail says what was wrong with this request.",
        Properties = new Dictionary<string, IOpenApiSchema>
        {
            ["type"] = Strings("The kind of problem as a URN.", ProblemCatalog.All.Select(k => k.Type)),
            ["title"] = new OpenApiSchema { Type = JsonSchemaType.String, Description = "The kind's title." },
            ["status"] = new OpenApiSchema { Type = JsonSchemaType.Integer, Format = "int32", Description = "The HTTP status." },
            ["detail"] = new OpenApiSchema { Type = JsonSchemaType.String, Description = "What was wrong with this request." },
            ["instance"] = new OpenApiSchema { Type = JsonSchemaType.String | JsonSchemaType.Null },
            ["kind"] = Strings("The kind of problem, for clients that switch on it.", ProblemCatalog.All.Select(k => k.Kind)),
            ["errors"] = new OpenApiSchema
            {
                Type = JsonSchemaType.Object,
                Description = "Validation problems only (validation, or the one domain kind of every member that failed): the messages for each request member that failed, keyed by its JSON path as the request spells it (order, nrPages, pfns[3]).",
                AdditionalProperties = new OpenApiSchema { Type = JsonSchemaType.Array, Items = new OpenApiSchema { Type = JsonSchemaType.String } },
            },
            ["traceId"] = new OpenApiSchema { Type = JsonSchemaType.String, Description = "The request's trace id, for the service's logs." },
        },
        Required = new HashSet<string> { "type", "title", "status", "detail", "kind" },
        AdditionalPropertiesAllowed = true,
    };

    private static OpenApiSchema Strings(string description, IEnumerable<string> values) => new()
    {
        Type = JsonSchemaType.String,
        Description = description,
        Enum = [.. values.Select(v => (JsonNode)JsonValue.Create(v))],
    };
}
