using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Diagnostics;

using PageAlloc.Api.Machines;

namespace PageAlloc.Api.Infrastructure;

/// <summary>
/// Turns the exceptions a client can cause into problem responses: request-binding failures
/// (malformed JSON, wrong types, unknown members, bodies too large, too slow or missing) into 400/408/413/415,
/// and a request that arrives while the machine boots into 503. Details say what was wrong in the
/// request's own terms, never the service's internal type names. Anything else is left to the
/// default handler.
/// </summary>
public sealed partial class ProblemExceptionHandler : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext httpContext, Exception exception, CancellationToken cancellationToken)
    {
        var (kind, detail) = exception switch
        {
            BadHttpRequestException { StatusCode: StatusCodes.Status413PayloadTooLarge } => (ProblemCatalog.BodyTooLarge, "The request body is larger than this endpoint accepts."),
            BadHttpRequestException { StatusCode: StatusCodes.Status408RequestTimeout } => (ProblemCatalog.RequestTimeout,
                "The request body arrived too slowly (under 240 bytes a second after 5 s); the connection is closed."),
            BadHttpRequestException bad when PfnText(bad) is { } text => (ProblemCatalog.InvalidPfn, Contracts.Pfn.Invalid(text)),
            BadHttpRequestException bad => (ProblemCatalog.MalformedRequest, Describe(bad, BodyType(httpContext))),
            MachineNotBootedException booting => (ProblemCatalog.Booting, booting.Message),
            // A grain call (the catalog's, a machine's) whose silo is stopping or lost: try again shortly.
            _ when Cluster.ClusterFailures.IsUnavailable(exception) => (ProblemCatalog.MachineUnavailable,
                $"A grain this call needs could not be reached ({exception.GetType().Name}): its silo is stopping or lost, and the grain is resumed on another. Try again shortly."),
            _ when Cluster.ClusterFailures.IsStorageFailure(exception) => (ProblemCatalog.MachineUnavailable,
                $"Grain storage did not confirm this call's change ({exception.GetType().Name}): Redis is down or slow, or another activation wrote first. The call did not complete; try again shortly."),
            _ => (null, ""),
        };
        if (kind is null)
        {
            return false;
        }
        if (kind == ProblemCatalog.Booting || kind == ProblemCatalog.MachineUnavailable)
        {
            httpContext.Response.Headers.RetryAfter = "1";
        }
        return await Problems.WriteAsync(httpContext, kind, detail, exception);
    }

    /// <summary>What was wrong with the request, in JSON terms: the path of the bad value and why.</summary>
    internal static string Describe(BadHttpRequestException bad, Type? bodyType)
    {
        if (bad.InnerException is not JsonException json)
        {
            return bad.InnerException is null && (bad.Message.Contains("no body was provided", StringComparison.Ordinal)
                || bad.Message.StartsWith("Required parameter", StringComparison.Ordinal))
                ? "A JSON request body is required."
                : WithoutTypeNames((bad.InnerException ?? bad).Message);
        }
        if (json.Message.Contains("could not be mapped to any .NET member", StringComparison.Ordinal))
        {
            return $"'{json.Path?.TrimStart('$', '.')}' at {json.Path} is not a member of this request.";
        }
        if (json.Message.StartsWith("must be one of", StringComparison.Ordinal))
        {
            return $"The value at {json.Path} {json.Message}";
        }
        if (json.Message.Contains("could not be converted to", StringComparison.Ordinal) && json.Path is { Length: > 2 } path)
        {
            return $"The value at {path} is not {Expected(bodyType, path)}.";
        }
        return $"The body is not valid JSON: {WithoutTypeNames(json.Message.Split(" Path: ")[0]).TrimEnd('.')}.";
    }

    /// <summary>The text of a pfn that did not bind (Failed to bind parameter "Pfn pfn" from "banana".), or null.</summary>
    private static string? PfnText(BadHttpRequestException bad) =>
        PfnBinding().Match(bad.Message) is { Success: true } m ? m.Groups["text"].Value : null;

    [GeneratedRegex("^Failed to bind parameter \"Pfn [a-z]+\" from \"(?<text>.*)\"\\.$")]
    private static partial Regex PfnBinding();

    /// <summary>The type of the failed endpoint's JSON body (the middleware has cleared the endpoint by now; the feature keeps it).</summary>
    private static Type? BodyType(HttpContext context) =>
        context.Features.Get<IExceptionHandlerFeature>()?.Endpoint?.Metadata.GetMetadata<Microsoft.AspNetCore.Http.Metadata.IAcceptsMetadata>()?.RequestType;

    /// <summary>What the body member at a path ($.order, $.pfns[3]) takes, in JSON terms.</summary>
    private static string Expected(Type? bodyType, string path)
    {
        var name = path.TrimStart('$', '.').Split('.', '[')[0];
        var property = bodyType?.GetProperties().FirstOrDefault(p => JsonNamingPolicy.CamelCase.ConvertName(p.Name) == name);
        var type = property is null ? null : Nullable.GetUnderlyingType(property.PropertyType) ?? property.PropertyType;
        return type switch
        {
            null => "of the documented type",
            _ when type == typeof(int) || type == typeof(long) => "an integer in range",
            _ when type == typeof(long[]) => "an array of integers",
            _ when type == typeof(string) => "a string",
            _ when type == typeof(bool) => "true or false",
            _ => "of the documented type",
        };
    }

    private static string WithoutTypeNames(string message) => TypeName().Replace(message, "the expected type");

    [GeneratedRegex(@"(?:PageAlloc|System|Microsoft)\.[\w.`]+(?:\[[^\]]*\])?")]
    private static partial Regex TypeName();
}
