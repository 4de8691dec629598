using System.Text.Json.Nodes;
using Microsoft.OpenApi;
using PageAlloc.Api.Contracts;
using Swashbuckle.AspNetCore.SwaggerGen;

namespace PageAlloc.Api.Infrastructure;

/// <summary>
/// Request examples for the OpenAPI document, so that "Try it out" in Swagger UI starts from the
/// seed scenario (an order-9 block at the Normal zone's first pfn) instead of "string" and 0.
/// </summary>
public sealed class RequestExamplesSchemaFilter : ISchemaFilter
{
    private static readonly Dictionary<Type, string> Examples = new()
    {
        [typeof(AllocPagesRequest)] = """{"order":9,"gfp":"GFP_KERNEL","cpu":0}""",
        [typeof(BlockRequest)] = """{"pfn":1048576,"order":9,"cpu":0}""",
        [typeof(FreeContigRangeRequest)] = """{"pfn":1048576,"nrPages":512,"strategy":"chunked","cpu":0}""",
        [typeof(FreePagesBulkRequest)] = """{"pfns":[1048576,1048577,1048578,1048579],"strategy":"chunked","cpu":0}""",
        [typeof(PageRequest)] = """{"pfn":1048576,"cpu":0}""",
        [typeof(DrainPagesRequest)] = """{"cpu":0}""",
        [typeof(HighOrderTestRequest)] = """{"iterations":10000,"order":9,"strategy":"chunked","zone":"Normal"}""",
    };

    public void Apply(IOpenApiSchema schema, SchemaFilterContext context)
    {
        if (schema is OpenApiSchema concrete && Examples.TryGetValue(context.Type, out var example))
        {
            concrete.Examples = [JsonNode.Parse(example)!];
        }
    }
}
