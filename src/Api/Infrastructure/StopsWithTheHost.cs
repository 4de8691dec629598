using PageAlloc.Api.OpenApi;

namespace PageAlloc.Api.Infrastructure;

/// <summary>
/// The long calls (a test, a replay, an alloc_contig_pages scan: up to Limits:TestTimeoutSeconds)
/// end when the service stops: their request's abort token is joined to
/// IHostApplicationLifetime.ApplicationStopping, so a SIGTERM does not wait for them (Kestrel waits
/// for every request before it exits, and docker stops a container 10 s after its SIGTERM). The
/// call, which changes only a private machine or nothing (a cancelled scan), answers 503 `stopping`.
/// It wraps those endpoints' own request delegates (nothing runs for other requests), inside
/// UseRequestTimeouts, so the token it joins carries the call's timeout too.
/// </summary>
public static class StopsWithTheHost
{
    /// <summary>How long an answer to a stopped call with a body still coming is left to be read before its connection is reset.</summary>
    private static readonly TimeSpan Linger = TimeSpan.FromSeconds(1);

    /// <summary>An endpoint whose work is cancelled when the service stops, with its 503 documented.</summary>
    public static TBuilder EndsWhenTheServiceStops<TBuilder>(this TBuilder builder)
        where TBuilder : IEndpointConventionBuilder
    {
        // Finally: after the framework has made the endpoint's request delegate, which binds the
        // handler's CancellationToken from RequestAborted when it runs.
        builder.Finally(endpoint =>
        {
            var handler = endpoint.RequestDelegate ?? throw new InvalidOperationException($"{endpoint.DisplayName} has no request delegate to wrap.");
            endpoint.RequestDelegate = context => InvokeAsync(context, handler);
        });
        return builder.Refuses("The service is stopping (SIGTERM): the call was stopped and changed nothing that is served.", ProblemCatalog.Stopping);
    }

    private static async Task InvokeAsync(HttpContext context, RequestDelegate next)
    {
        var stopping = context.RequestServices.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping;
        var aborted = context.RequestAborted;
        using var either = CancellationTokenSource.CreateLinkedTokenSource(aborted, stopping);
        context.RequestAborted = either.Token;
        try
        {
            await next(context);
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested && !aborted.IsCancellationRequested && !context.Response.HasStarted)
        {
            context.Response.Clear();
            UnreadBody.CloseConnection(context);
            await Problems.WriteAsync(context, ProblemCatalog.Stopping,
                "The service is stopping (SIGTERM), and this call was stopped with it; it changed nothing that is served. Try again once it is back, or on another instance.");
            if (context.Response.Headers.Connection == "close")
            {
                // A replay's body may still be coming: Kestrel would go on reading it before it closes
                // the connection, and the shutdown would wait for that (a body that never ends held
                // it for the whole 30 s shutdown timeout). The answer is sent, the client is given a
                // moment to read it (a close with unread body bytes is a reset, and a reset can discard
                // an answer the client has not read yet), and the connection ends.
                await context.Response.CompleteAsync();
                await Task.Delay(Linger, CancellationToken.None);
                context.Abort();
            }
        }
        finally
        {
            context.RequestAborted = aborted;
        }
    }
}
