using Microsoft.AspNetCore.Diagnostics;

namespace PageAlloc.Api.Infrastructure;

/// <summary>
/// Turns request-binding failures (malformed JSON, wrong types, numbers out of range, missing
/// bodies) into 400 problem responses. Anything else is left to the default handler.
/// </summary>
public sealed class BadRequestExceptionHandler(IProblemDetailsService problems) : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext httpContext, Exception exception, CancellationToken cancellationToken)
    {
        if (exception is not BadHttpRequestException bad)
        {
            return false;
        }
        httpContext.Response.StatusCode = bad.StatusCode;
        return await problems.TryWriteAsync(new ProblemDetailsContext
        {
            HttpContext = httpContext,
            Exception = exception,
            ProblemDetails =
            {
                Status = bad.StatusCode,
                Title = "Malformed request",
                Type = Problems.TypePrefix + "malformed-request",
                Detail = bad.InnerException?.Message ?? bad.Message,
            },
        });
    }
}
