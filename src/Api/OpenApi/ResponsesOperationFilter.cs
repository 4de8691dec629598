using System.ComponentModel.DataAnnotations;
using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http.Metadata;
using Microsoft.Extensions.Options;
using Microsoft.OpenApi;
using PageAlloc.Api.Infrastructure;
using Swashbuckle.AspNetCore.SwaggerGen;

namespace PageAlloc.Api.OpenApi;

/// <summary>
/// Describes every response of every operation: the endpoint's own <see cref="ResponseDoc"/>s, then
/// the problems any request can meet whatever its endpoint (the machine booting, the per-key request
/// budget, and for POSTs the body's media type and size). Each problem response lists its kinds and
/// carries one named example per kind, so a client author sees every answer the call can give.
/// A 400 also lists the domain kinds its validation problems can have: those of the body's members
/// that carry a bound (<see cref="ProblemCatalog.OutOfRange"/>), so that list cannot drift from the
/// request records.
/// </summary>
public sealed class ResponsesOperationFilter(IOptions<Microsoft.AspNetCore.Http.Json.JsonOptions> json) : IOperationFilter
{
    private static readonly ResponseDoc[] AnyRequest =
    [
        new(429, "The caller's API key has spent its request budget (only when API keys are configured). Retry after the Retry-After header's seconds.", [ProblemCatalog.TooManyRequests]),
        new(503, "The machine is booting (at start or during a reset), or every connection is taken and this one is kept for health probes. Retry after the Retry-After header's seconds.",
            [ProblemCatalog.Booting, ProblemCatalog.ServiceFull]),
    ];

    private static readonly ResponseDoc[] AnyBody =
    [
        new(408, "The body arrived too slowly (under 240 bytes a second after 5 s).", [ProblemCatalog.RequestTimeout]),
        new(413, "The body is larger than this endpoint accepts.", [ProblemCatalog.BodyTooLarge]),
        new(415, "The body is not application/json (a POST takes JSON or no body).", [ProblemCatalog.UnsupportedMediaType]),
    ];

    public void Apply(OpenApiOperation operation, OperationFilterContext context)
    {
        var docs = context.ApiDescription.ActionDescriptor.EndpointMetadata.OfType<ResponseDoc>().ToList();
        var isPost = string.Equals(context.ApiDescription.HttpMethod, "POST", StringComparison.OrdinalIgnoreCase);
        var outOfRange = OutOfRangeKinds(context.ApiDescription.ActionDescriptor.EndpointMetadata, json.Value.SerializerOptions);
        if (outOfRange.Count > 0 && docs.All(d => d.Status != StatusCodes.Status400BadRequest))
        {
            docs.Add(new ResponseDoc(StatusCodes.Status400BadRequest, "A request member is missing or out of range; nothing changed.", [ProblemCatalog.Validation]));
        }
        docs.AddRange(AnyRequest.Where(d => docs.All(own => own.Status != d.Status)));
        if (isPost)
        {
            docs.InsertRange(0, AnyBody); // first, so that an endpoint's own sentence for its 413 wins
        }
        operation.Responses ??= [];
        foreach (var group in docs.GroupBy(d => d.Status))
        {
            var key = group.Key.ToString(System.Globalization.CultureInfo.InvariantCulture);
            var kinds = group.SelectMany(d => d.Kinds).Concat(group.Key == StatusCodes.Status400BadRequest ? outOfRange : []).Distinct().ToList();
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

    /// <summary>The domain kinds of the JSON body's members that a validation attribute bounds (not [Required] alone), in member order.</summary>
    internal static IReadOnlyList<ProblemKind> OutOfRangeKinds(IEnumerable<object> metadata, JsonSerializerOptions options)
    {
        if (metadata.OfType<IAcceptsMetadata>().LastOrDefault()?.RequestType is not { } body)
        {
            return [];
        }
        return [.. body.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.GetCustomAttributes<ValidationAttribute>().Any(a => a is not RequiredAttribute))
            .Select(p => ProblemCatalog.OutOfRange(ValidationProblems.JsonName(body, p, options)))
            .OfType<Domain.Model.PageErrorKind>()
            .Select(ProblemCatalog.Of)
            .Distinct()];
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
