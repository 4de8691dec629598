using System.Text.Json.Nodes;
using Microsoft.OpenApi;
using Swashbuckle.AspNetCore.SwaggerGen;

namespace PageAlloc.Api.OpenApi;

/// <summary>
/// Path parameters with an example and a description, so Swagger UI's "Try it out" starts with a
/// zone that exists and a pfn inside it, not an empty required box.
/// </summary>
public sealed class PathParameterExamplesFilter : IOperationFilter
{
    private static readonly Dictionary<string, (string Example, string Description)> Known = new()
    {
        ["zone"] = ("Normal", "A zone's name as GET /zones lists it (DMA, DMA32, Normal, Movable), or with its node (\"Normal@1\") for nodes other than 0."),
        ["pfn"] = ("0x100000", "A page frame number, decimal or 0x-prefixed hex as the kernel prints it."),
    };

    public void Apply(OpenApiOperation operation, OperationFilterContext context)
    {
        foreach (var parameter in operation.Parameters?.OfType<OpenApiParameter>() ?? [])
        {
            if (parameter.In == ParameterLocation.Path && Known.TryGetValue(parameter.Name ?? "", out var known))
            {
                parameter.Example = JsonValue.Create(known.Example);
                parameter.Description ??= known.Description;
            }
        }
    }
}
