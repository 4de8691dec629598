using PageAlloc.Api.Infrastructure;

namespace PageAlloc.Api.OpenApi;

/// <summary>
/// What one status of one endpoint means, for the OpenAPI document: a sentence, and for a problem
/// status the problem kinds it can carry (each becomes a named example). Endpoint metadata, so the
/// description sits beside the mapping it describes; <see cref="ResponsesOperationFilter"/> reads it.
/// </summary>
public sealed record ResponseDoc(int Status, string Description, IReadOnlyList<ProblemKind> Kinds);

public static class ResponseDocExtensions
{
    /// <summary>Documents what a successful status of this endpoint (or every endpoint of a group) returns.</summary>
    public static TBuilder Answers<TBuilder>(this TBuilder builder, int status, string description)
        where TBuilder : IEndpointConventionBuilder =>
        builder.WithMetadata(new ResponseDoc(status, description, []));

    /// <summary>
    /// Declares a problem response (application/problem+json) of the given kinds, all of one status,
    /// and what it means here. A later call for the same status (an endpoint's after its group's) adds kinds.
    /// </summary>
    public static TBuilder Refuses<TBuilder>(this TBuilder builder, string description, params ProblemKind[] kinds)
        where TBuilder : IEndpointConventionBuilder
    {
        var status = kinds.Select(k => k.Status).Distinct().Single();
        builder.WithMetadata(new ProducesResponseTypeMetadata(
            status, typeof(Microsoft.AspNetCore.Mvc.ProblemDetails), ["application/problem+json"]));
        return builder.WithMetadata(new ResponseDoc(status, description, kinds));
    }
}
