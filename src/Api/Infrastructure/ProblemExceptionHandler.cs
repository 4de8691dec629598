using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Diagnostics;

namespace PageAlloc.Api.Infrastructure;

/// <summary>
/// Turns the exceptions a client can cause into problem responses: request-binding failures
/// (malformed JSON, wrong types, unknown members, bodies too large or missing) into 400/413/415,
/// and a request that arrives while the machine boots into 503. Details say what was wrong in the
/// request's own terms, never the service's internal type names. Anything else is left to the
/// default handler.
/// </summary>
public sealed partial class ProblemExceptionHandler(IProblemDetailsService problems) : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext httpContext, Exception exception, CancellationToken cancellationToken)
    {
        var (status, kind, title, detail) = exception switch
        {
            BadHttpRequestException bad => (bad.StatusCode, "malformed-request", "Malformed request", Describe(bad)),
            MachineNotBootedException booting => (StatusCodes.Status503ServiceUnavailable, "booting", "Booting", booting.Message),
            _ => (0, "", "", ""),
        };
        if (status == 0)
        {
            return false;
        }
        httpContext.Response.StatusCode = status;
        if (status == StatusCodes.Status503ServiceUnavailable)
        {
            httpContext.Response.Headers.RetryAfter = "1";
        }
        return await problems.TryWriteAsync(new ProblemDetailsContext
        {
            HttpContext = httpContext,
            Exception = exception,
            ProblemDetails = { Status = status, Title = title, Type = Problems.TypePrefix + kind, Detail = detail },
        });
    }

    /// <summary>What was wrong with the request, in JSON terms: the path of the bad value and why.</summary>
    internal static string Describe(BadHttpRequestException bad)
    {
        if (bad.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            return "The request body is larger than this endpoint accepts.";
        }
        if (bad.InnerException is JsonException json)
        {
            var where = json.Path is { Length: > 1 } path ? $"at {path}" : "in the body";
            var why = json.Message switch
            {
                var m when m.Contains("could not be mapped to any .NET member", StringComparison.Ordinal) => "is not a member of this request",
                var m when m.Contains("could not be converted to", StringComparison.Ordinal) => $"is not {Expected(m)}",
                var m when m.StartsWith("must be one of", StringComparison.Ordinal) => m.TrimEnd('.'),
                var m => WithoutTypeNames(m.Split(" Path: ")[0]).TrimEnd('.'),
            };
            var member = json.Message.Contains("could not be mapped", StringComparison.Ordinal) && QuotedName().Match(json.Message) is { Success: true } q
                ? $"'{q.Groups[1].Value}' "
                : "The value ";
            return $"{member}{where} {why}.";
        }
        return bad.InnerException is null || bad.Message.StartsWith("Required parameter", StringComparison.Ordinal)
            ? WithoutTypeNames(bad.Message.StartsWith("Required parameter", StringComparison.Ordinal) ? "A JSON request body is required." : bad.Message)
            : WithoutTypeNames(bad.InnerException.Message);
    }

    /// <summary>The JSON kind a .NET type name in a serializer message stands for.</summary>
    private static string Expected(string message) => message switch
    {
        var m when m.Contains("Int32", StringComparison.Ordinal) || m.Contains("Int64", StringComparison.Ordinal) => "an integer in range",
        var m when m.Contains("Boolean", StringComparison.Ordinal) => "true or false",
        var m when m.Contains("String", StringComparison.Ordinal) => "a string",
        var m when m.Contains("[]", StringComparison.Ordinal) => "an array",
        _ => "an object of the documented shape",
    };

    private static string WithoutTypeNames(string message) => TypeName().Replace(message, "the expected type");

    [GeneratedRegex(@"(?:PageAlloc|System|Microsoft)\.[\w.`]+(?:\[[^\]]*\])?")]
    private static partial Regex TypeName();

    [GeneratedRegex("'([^']+)'")]
    private static partial Regex QuotedName();
}
