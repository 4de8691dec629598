using System.Text.Json.Nodes;
using Microsoft.OpenApi;
using Swashbuckle.AspNetCore.SwaggerGen;

namespace PageAlloc.Api.OpenApi;

/// <summary>
/// Parameters with an example, a description and, where the values are a closed set, their list:
/// Swagger UI's "Try it out" starts with a zone that exists and a pfn inside it rather than an empty
/// required box, offers GET /events' formats in a list, and fills in a time that ends the stream
/// (Swagger UI shows a streamed answer only once it has ended). Route parameters that no handler
/// parameter binds (the machine and zone, which MachineScope and ZoneScope resolve) are added
/// here, in route order, so the document still lists them.
/// </summary>
public sealed class ParameterExamplesFilter : IOperationFilter
{
    private sealed record Known(string Example, string? Description = null, string[]? Values = null);

    private static readonly Dictionary<(ParameterLocation, string), Known> Parameters = new()
    {
        [(ParameterLocation.Path, "machine")] = new("default", "A machine's name as GET /machines lists it. default is the configured machine, whose routes are also served without the /machines/default prefix."),
        [(ParameterLocation.Path, "zone")] = new("Normal", "A zone's name as GET /zones lists it (DMA, DMA32, Normal, Movable), or with its node (\"Normal@1\") for nodes other than 0."),
        [(ParameterLocation.Path, "pfn")] = new("0x100000", "A page frame number, decimal or 0x-prefixed hex as the kernel prints it."),
        [(ParameterLocation.Query, "format")] = new("text", Values: ["text", "json", "perf-script"]),
        [(ParameterLocation.Query, "seconds")] = new("5"),
    };

    public void Apply(OpenApiOperation operation, OperationFilterContext context)
    {
        AddUnboundRouteParameters(operation, context.ApiDescription.RelativePath ?? "");
        foreach (var parameter in operation.Parameters?.OfType<OpenApiParameter>() ?? [])
        {
            if (parameter.In is not { } location || !Parameters.TryGetValue((location, parameter.Name ?? ""), out var known)
                || location == ParameterLocation.Query && context.ApiDescription.RelativePath?.EndsWith("events", StringComparison.Ordinal) != true)
            {
                continue; // the query parameters listed are /events' own
            }
            parameter.Example = int.TryParse(known.Example, out var number) ? JsonValue.Create(number) : JsonValue.Create(known.Example);
            parameter.Description ??= known.Description;
            if (known.Values is { } values && parameter.Schema is OpenApiSchema schema)
            {
                schema.Enum = [.. values.Select(v => (JsonNode)JsonValue.Create(v))];
            }
        }
    }

    private static void AddUnboundRouteParameters(OpenApiOperation operation, string path)
    {
        var names = System.Text.RegularExpressions.Regex.Matches(path, @"\{([A-Za-z]+)[^}]*\}").Select(m => m.Groups[1].Value).ToList();
        operation.Parameters ??= [];
        var at = 0;
        foreach (var name in names)
        {
            if (!operation.Parameters.Any(p => p.In == ParameterLocation.Path && p.Name == name))
            {
                operation.Parameters.Insert(at, new OpenApiParameter
                {
                    Name = name,
                    In = ParameterLocation.Path,
                    Required = true,
                    Schema = new OpenApiSchema { Type = JsonSchemaType.String },
                });
            }
            at = operation.Parameters.ToList().FindIndex(p => p.In == ParameterLocation.Path && p.Name == name) + 1;
        }
    }
}
