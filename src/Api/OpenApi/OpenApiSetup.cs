using Microsoft.OpenApi;
using PageAlloc.Api.Security;

namespace PageAlloc.Api.OpenApi;

/// <summary>
/// The OpenAPI document (Swashbuckle): what clients are generated from, and what Swagger UI shows.
/// Committed as src/Api/openapi/openapi.json and linted by Redocly and Spectral in .ci/run.
/// </summary>
public static class OpenApiSetup
{
    /// <summary>
    /// Operations in the order a newcomer meets them: the seed's flow first (alloc_pages, split_page,
    /// free_contig_range), then the other calls on pages, then the read-only views.
    /// </summary>
    private static readonly string[] OperationOrder =
    [
        "AllocPages", "SplitPage", "FreeContigRange", "FreePages", "FreePagesBulk", "GetPage", "PutPage", "HwPoison",
        "GetPageState", "DrainPages", "GetZoneStats",
        "ListZones", "GetZone", "GetPageblocks", "ImportFreeLists", "FragmentZone",
        "GetStats", "Reset",
        "ProcBuddyinfo", "ProcPagetypeinfo", "ProcZoneinfo", "ProcVmstat", "DebugfsExtfragIndex", "DebugfsUnusableIndex",
        "PageAllocHighOrderTest", "ReplayTrace",
        "StreamEvents",
    ];

    public static IServiceCollection AddPageAllocOpenApi(this IServiceCollection services)
    {
        services.AddEndpointsApiExplorer();
        return services.AddSwaggerGen(o =>
        {
            o.SwaggerDoc("v1", new()
            {
                Title = "PageAlloc",
                Version = "v1",
                Description = "The Linux page allocator (zones, buddy free lists, per-cpu page lists, refcounts, split_page, "
                    + "free_contig_range), simulated and served over HTTP. Every operation names the kernel function it models.",
            });
            // A pfn in a path is text (decimal or 0x hex), as clients send it; ParameterExamplesFilter describes it.
            o.MapType<PageAlloc.Api.Contracts.Pfn>(() => new OpenApiSchema { Type = JsonSchemaType.String });
            o.SupportNonNullableReferenceTypes();
            o.NonNullableReferenceTypesAsRequired();
            o.SchemaFilter<RequiredMembersSchemaFilter>();
            o.SchemaFilter<ExamplesSchemaFilter>();
            o.OperationFilter<ResponsesOperationFilter>();
            o.OperationFilter<ParameterExamplesFilter>();
            o.OperationFilter<NonJsonBodyFilter>();
            o.DocumentFilter<DocumentShapeFilter>();
            // X-Api-Key: required when the service has keys configured (Security:ApiKeys), ignored otherwise.
            o.AddSecurityDefinition(ApiKeyAuthenticationHandler.SchemeName, new OpenApiSecurityScheme
            {
                Type = SecuritySchemeType.ApiKey,
                In = ParameterLocation.Header,
                Name = SecurityOptions.HeaderName,
                Description = "An API key, when the service has keys configured (off by default). Pages belong to the key that allocated them.",
            });
            o.AddSecurityRequirement(document => new OpenApiSecurityRequirement
            {
                [new OpenApiSecuritySchemeReference(ApiKeyAuthenticationHandler.SchemeName, document)] = [],
            });
            o.OrderActionsBy(api =>
            {
                var name = api.ActionDescriptor.EndpointMetadata.OfType<IEndpointNameMetadata>().FirstOrDefault()?.EndpointName;
                var rank = name is null ? -1 : Array.IndexOf(OperationOrder, name);
                return $"{(rank < 0 ? OperationOrder.Length : rank):D2} {api.RelativePath}";
            });
        });
    }
}
