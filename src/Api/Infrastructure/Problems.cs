using Microsoft.AspNetCore.Http.HttpResults;
using PageAlloc.Domain.Model;

namespace PageAlloc.Api.Infrastructure;

/// <summary>
/// Writes RFC 9457 problem responses of the kinds in <see cref="ProblemCatalog"/>: a stable URN type
/// per kind, the kind's title, and a detail that says what was wrong with this request. The kind
/// itself is added to every problem by <see cref="ProblemCatalog.Complete"/>.
/// </summary>
public static class Problems
{
    public static ProblemHttpResult From(PageError error) => Of(ProblemCatalog.Of(error.Kind), error.Detail);

    public static ProblemHttpResult UnknownZone(string zone, IEnumerable<string> known) =>
        Of(ProblemCatalog.UnknownZone, $"There is no zone '{zone}'. Zones: {string.Join(", ", known)}.");

    public static ProblemHttpResult Of(ProblemKind kind, string detail) =>
        TypedResults.Problem(detail: detail, statusCode: kind.Status, title: kind.Title, type: kind.Type);

    /// <summary>
    /// Writes a problem where no endpoint returns one (middleware, authentication, the exception
    /// handler), through the framework's IProblemDetailsService like every other problem.
    /// </summary>
    public static ValueTask<bool> WriteAsync(HttpContext context, ProblemKind kind, string detail, Exception? exception = null)
    {
        context.Response.StatusCode = kind.Status;
        return context.RequestServices.GetRequiredService<IProblemDetailsService>().TryWriteAsync(new ProblemDetailsContext
        {
            HttpContext = context,
            Exception = exception,
            ProblemDetails = { Status = kind.Status, Title = kind.Title, Type = kind.Type, Detail = detail },
        });
    }
}
