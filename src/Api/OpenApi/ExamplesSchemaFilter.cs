using System.Text.Json.Nodes;
using Microsoft.OpenApi;
using PageAlloc.Api.Contracts;
using Swashbuckle.AspNetCore.SwaggerGen;

namespace PageAlloc.Api.OpenApi;

/// <summary>
/// Examples for the OpenAPI document, all from the seed scenario on the default machine (an order-9
/// block at the Normal zone's first pfn, 0x100000), so that "Try it out" in Swagger UI starts from a
/// call that works instead of "string" and 0, and a reader sees what each call answers.
/// </summary>
public sealed class ExamplesSchemaFilter : ISchemaFilter
{
    private static readonly Dictionary<Type, string> Examples = new()
    {
        // Requests
        [typeof(AllocPagesRequest)] = """{"order":9,"gfp":"GFP_KERNEL","cpu":0}""",
        [typeof(BlockRequest)] = """{"pfn":1048576,"order":9,"cpu":0}""",
        [typeof(FreeContigRangeRequest)] = """{"pfn":1048576,"nrPages":512,"strategy":"chunked","cpu":0}""",
        [typeof(FreePagesBulkRequest)] = """{"pfns":[1048576,1048577,1048578,1048579],"strategy":"chunked","cpu":0}""",
        [typeof(PageRequest)] = """{"pfn":1048576,"cpu":0}""",
        [typeof(DrainPagesRequest)] = """{"cpu":0}""",
        [typeof(FragmentRequest)] = """{"freePages":500000,"order":9,"unusableIndex":0.6,"seed":1}""",
        [typeof(HighOrderTestRequest)] = """{"iterations":10000,"order":9,"strategy":"chunked","zone":"Normal"}""",
        // Responses
        [typeof(AllocPagesResponse)] = """{"pfn":1048576,"order":9,"zone":"Normal","migratetype":"unmovable","compound":false,"fromPcp":true,"gfp":"GFP_KERNEL"}""",
        [typeof(SplitPageResponse)] = """{"pfn":1048576,"order":9,"pages":512}""",
        [typeof(RangeFreeResponse)] = """{"freed":512,"notFreed":0,"leaked":0,"chunksByOrder":[0,0,0,0,0,0,0,0,0,1,0],"chunksUnlisted":1,"strategy":"chunked"}""",
        [typeof(FreePagesResponse)] = """{"pfn":1048576,"order":9,"freed":true,"refcount":0}""",
        [typeof(RefcountResponse)] = """{"pfn":1048576,"refcount":2,"freed":false}""",
        [typeof(DrainPagesResponse)] = """{"drained":63}""",
    };

    public void Apply(IOpenApiSchema schema, SchemaFilterContext context)
    {
        if (schema is OpenApiSchema concrete && Examples.TryGetValue(context.Type, out var example))
        {
            concrete.Examples = [JsonNode.Parse(example)!];
        }
    }
}
