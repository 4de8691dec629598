using Microsoft.OpenApi;
using PageAlloc.Api.Infrastructure;
using Swashbuckle.AspNetCore.SwaggerGen;

namespace PageAlloc.Api.OpenApi;

/// <summary>
/// Request bodies an endpoint takes besides its JSON one (<see cref="NonJsonBody"/> media types, such
/// as a snapshot beside POST /machines' JSON): in the document as binary, not as the JSON's schema
/// (Accepts names one body type for all its media types), and the
/// body is optional when the endpoint's own handler reads it (an empty POST /machines boots a
/// machine of the default shape).
/// </summary>
public sealed class NonJsonBodyFilter : IOperationFilter
{
    public void Apply(OpenApiOperation operation, OperationFilterContext context)
    {
        var metadata = context.ApiDescription.ActionDescriptor.EndpointMetadata;
        if (metadata.OfType<NonJsonBody>().FirstOrDefault() is not { } other || operation.RequestBody is not OpenApiRequestBody body)
        {
            return;
        }
        body.Content ??= new Dictionary<string, IOpenApiMediaType>();
        foreach (var type in other.MediaTypes)
        {
            body.Content[type] = new OpenApiMediaType { Schema = new OpenApiSchema { Type = JsonSchemaType.String, Format = "binary" } };
        }
        if (metadata.OfType<OptionalBodyMetadata>().Any())
        {
            body.Required = false;
        }
    }
}

/// <summary>Endpoint metadata: the handler reads its body itself, and an empty one is allowed.</summary>
public sealed class OptionalBodyMetadata;
