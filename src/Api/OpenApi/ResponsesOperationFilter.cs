using System.Text.Json.Nodes;
using Microsoft.OpenApi;
using PageAlloc.Api.Infrastructure;
using Swashbuckle.AspNetCore.SwaggerGen;

namespace PageAlloc.Api.OpenApi;

/// <summary>
/// Describes every response of every operation: the endpoint's own <see cref="ResponseDoc"/>s, then
/// the problems any request can meet whatever its endpoint (the machine booting, the per-key request
/// budget, and for POSTs the body's media type and size). Each problem response lists its kinds and
/// carries one named example per kind, so a client author sees every answer the call can give.
/// </summary>
public sealed class ResponsesOperationFilter : IOperationFilter
{
    private static readonly ResponseDoc[] AnyRequest =
    [
        new(429, "The caller's API key has spent its request budget (only when API keys are configured). Retry later.", [ProblemCatalog.TooManyRequests]),
        new(503, "The machine is booting (at start or during a reset). Retry after the Retry-After header's seconds.", [ProblemCatalog.Booting]),
    ];

    private static readonly ResponseDoc[] AnyBody =
    [
        new(413, "The body is larger than this endpoint accepts.", [ProblemCatalog.BodyTooLarge]),
        new(415, "The body is not application/json (a POST takes JSON or no body).", [ProblemCatalog.UnsupportedMediaType]),
    ];

    public void Apply(OpenApiOperation operation, OperationFilterContext context)
    {
        var docs = context.ApiDescription.ActionDescriptor.EndpointMetadata.OfType<ResponseDoc>().ToList();
        var isPost = string.Equals(context.ApiDescription.HttpMethod, "POST", StringComparison.OrdinalIgnoreCase);
        docs.AddRange(AnyRequest.Where(d => docs.All(own => own.Status != d.Status)));
        if (isPost)
        {
            docs.AddRange(AnyBody);
        }
        operation.Responses ??= [];
        foreach (var group in docs.GroupBy(d => d.Status))
        {
            var key = group.Key.ToString(System.Globalization.CultureInfo.InvariantCulture);
            var kinds = group.SelectMany(d => d.Kinds).Distinct().ToList();
            // The last description wins: an endpoint's own sentence over its group's.
            var description = group.Last().Description;
            if (!operation.Responses.TryGetValue(key, out var existing) || existing is not OpenApiResponse response)
            {
                response = new OpenApiResponse();
                operation.Responses[key] = response;
            }
            if (kinds.Count == 0)
            {
                response.Description = description;
                continue;
            }
            response.Description = $"{description} Kinds: {string.Join(", ", kinds.Select(k => k.Kind))}.";
            response.Content = new Dictionary<string, IOpenApiMediaType>
            {
                ["application/problem+json"] = new OpenApiMediaType
                {
                    Schema = context.SchemaGenerator.GenerateSchema(typeof(Microsoft.AspNetCore.Mvc.ProblemDetails), context.SchemaRepository),
                    Examples = kinds.ToDictionary(k => k.Kind, k => (IOpenApiExample)new OpenApiExample
                    {
                        Summary = k.Title,
                        Value = ExampleOf(k),
                    }),
                },
            };
        }
        operation.Responses = Sorted(operation.Responses);
    }

    /// <summary>A problem of this kind as the service writes it.</summary>
    internal static JsonObject ExampleOf(ProblemKind kind) => new()
    {
        ["type"] = kind.Type,
        ["title"] = kind.Title,
        ["status"] = kind.Status,
        ["detail"] = kind.When,
        ["kind"] = kind.Kind,
    };

    /// <summary>Responses in status order, successes first, as a reader scans them.</summary>
    private static OpenApiResponses Sorted(OpenApiResponses responses)
    {
        var sorted = new OpenApiResponses();
        foreach (var (status, response) in responses.OrderBy(r => r.Key, StringComparer.Ordinal))
        {
            sorted[status] = response;
        }
        return sorted;
    }
}
