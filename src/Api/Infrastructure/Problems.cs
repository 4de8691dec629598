using Microsoft.AspNetCore.Http.HttpResults;
using PageAlloc.Domain.Model;

namespace PageAlloc.Api.Infrastructure;

/// <summary>
/// Maps domain refusals to RFC 9457 problem responses: a stable type per kind of failure, the
/// domain's sentence as the detail, and the kind as an extension for clients that switch on it.
/// </summary>
public static class Problems
{
    public const string TypePrefix = "urn:pagealloc:problem:";

    public static int StatusOf(PageErrorKind kind) => kind switch
    {
        PageErrorKind.InvalidOrder or PageErrorKind.InvalidCpu or PageErrorKind.InvalidGfp
            or PageErrorKind.OutOfZone or PageErrorKind.Misaligned or PageErrorKind.InvalidLength => StatusCodes.Status400BadRequest,
        PageErrorKind.OutOfMemory or PageErrorKind.MemcgMax => StatusCodes.Status507InsufficientStorage,
        PageErrorKind.NotOwner => StatusCodes.Status403Forbidden,
        _ => StatusCodes.Status409Conflict,
    };

    /// <summary>"InvalidOrder" becomes "invalid-order", as the enums are spelled on the wire.</summary>
    public static string Slug(string pascal) => System.Text.Json.JsonNamingPolicy.KebabCaseLower.ConvertName(pascal);

    public static ProblemHttpResult From(PageError error) => TypedResults.Problem(
        detail: error.Detail,
        statusCode: StatusOf(error.Kind),
        title: TitleOf(error.Kind),
        type: TypePrefix + Slug(error.Kind.ToString()),
        extensions: new Dictionary<string, object?> { ["kind"] = error.Kind.ToString() });

    public static ProblemHttpResult UnknownZone(string zone, IEnumerable<string> known) => TypedResults.Problem(
        detail: $"There is no zone '{zone}'. Zones: {string.Join(", ", known)}.",
        statusCode: StatusCodes.Status404NotFound,
        title: "Unknown zone",
        type: TypePrefix + "unknown-zone");

    public static ProblemHttpResult BadRequest(string kind, string title, string detail) => TypedResults.Problem(
        detail: detail,
        statusCode: StatusCodes.Status400BadRequest,
        title: title,
        type: TypePrefix + kind);

    /// <summary>
    /// Writes a problem where no endpoint returns one (middleware, authentication, the exception
    /// handler), through the framework's IProblemDetailsService like every other problem.
    /// </summary>
    public static ValueTask<bool> WriteAsync(HttpContext context, int status, string kind, string title, string detail, Exception? exception = null)
    {
        context.Response.StatusCode = status;
        return context.RequestServices.GetRequiredService<IProblemDetailsService>().TryWriteAsync(new ProblemDetailsContext
        {
            HttpContext = context,
            Exception = exception,
            ProblemDetails = { Status = status, Title = title, Type = TypePrefix + kind, Detail = detail },
        });
    }

    private static string TitleOf(PageErrorKind kind) => kind switch
    {
        PageErrorKind.InvalidOrder => "Order out of range",
        PageErrorKind.InvalidCpu => "Unknown cpu",
        PageErrorKind.InvalidGfp => "Invalid gfp flags",
        PageErrorKind.OutOfZone => "Outside the zone",
        PageErrorKind.Misaligned => "Misaligned pfn",
        PageErrorKind.InvalidLength => "Invalid length",
        PageErrorKind.PageFree => "Page is free",
        PageErrorKind.NotHead => "Not the head of an allocation",
        PageErrorKind.WrongOrder => "Wrong order",
        PageErrorKind.CompoundPage => "Compound page",
        PageErrorKind.NotSplit => "Block not split",
        PageErrorKind.NonCompoundPut => "put_page would leak a non-compound block",
        PageErrorKind.HwPoisoned => "Page is HWPoison",
        PageErrorKind.MemcgMax => "Memory cgroup limit reached",
        PageErrorKind.NotOwner => "Page belongs to another client",
        _ => "Allocation failed",
    };
}
