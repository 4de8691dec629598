namespace PageAlloc.Api.Infrastructure;

/// <summary>
/// POSTs carry JSON or nothing. A browser can send a cross-site form post (form or text content
/// types) without asking first; refusing every other media type with 415 before any endpoint runs
/// means such a post cannot change the machine, whatever route it names. An endpoint that takes
/// another body says so with <see cref="NonJsonBody"/> metadata, and only types a form cannot send
/// (application/octet-stream, application/gzip) may be named there.
/// </summary>
public static class JsonOnlyWrites
{
    public static async Task InvokeAsync(HttpContext context, Func<Task> next)
    {
        var request = context.Request;
        if (HttpMethods.IsGet(request.Method) || HttpMethods.IsHead(request.Method) || IsJsonOrEmpty(request)
            || context.GetEndpoint()?.Metadata.GetMetadata<NonJsonBody>() is { } other && other.Accepts(request.ContentType))
        {
            await next();
            return;
        }
        UnreadBody.CloseConnection(context); // the body is not read
        await Problems.WriteAsync(context, ProblemCatalog.UnsupportedMediaType,
            $"Requests that change state take application/json (or no body), not '{request.ContentType ?? "a body without a content type"}'.");
    }

    private static bool IsJsonOrEmpty(HttpRequest request)
    {
        if (request.ContentType is null)
        {
            return request.ContentLength is null or 0 && request.Headers.TransferEncoding.Count == 0;
        }
        // The common spelling first: parsing the media type costs more than the rest of this check.
        return request.ContentType.StartsWith("application/json", StringComparison.OrdinalIgnoreCase) || request.HasJsonContentType();
    }
}

/// <summary>Endpoint metadata: the non-JSON media types this endpoint's body may have (never a form's).</summary>
public sealed record NonJsonBody(params string[] MediaTypes)
{
    public bool Accepts(string? contentType) =>
        contentType is not null && MediaTypes.Any(t => contentType.StartsWith(t, StringComparison.OrdinalIgnoreCase));
}
