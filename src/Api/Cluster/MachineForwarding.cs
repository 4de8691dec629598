using Microsoft.Extensions.Options;
using PageAlloc.Api.Infrastructure;
using PageAlloc.Api.Machines;

namespace PageAlloc.Api.Cluster;

/// <summary>Marks an endpoint that acts on one machine (its route names it, or it is one of default's aliases): it runs where the machine is activated.</summary>
public sealed class MachineRoutedMetadata;

/// <summary>Marks an endpoint whose answer is a stream without end (GET .../events): relayed as it is written (<see cref="RelayedAnswer"/>), not as one answer.</summary>
public sealed class StreamingAnswerMetadata;

/// <summary>
/// The last middleware before a machine's endpoint: a request for a machine activated on this silo
/// goes on here, on the activation's machine (no message, as Orleans runs a local call); any other
/// is sent to the machine's grain (<see cref="IMachineGrain.Serve"/>), which Orleans finds or
/// activates wherever the cluster places it, and its answer is written back as it came.
/// </summary>
public static class MachineForwarding
{
    /// <summary>HttpContext.Items key set on a request being run for another silo.</summary>
    public const string ForwardedItem = "PageAlloc.Forwarded";

    /// <summary>Headers of one connection, not of the answer: the receiving silo writes its own.</summary>
    public static readonly HashSet<string> HopHeaders = new(StringComparer.OrdinalIgnoreCase)
        { "Connection", "Keep-Alive", "Transfer-Encoding", "Content-Length", "Date", "Server", "Upgrade" };

    /// <summary>An endpoint's identity across silos (every silo maps the same): its method and route pattern.</summary>
    public static string KeyOf(Endpoint endpoint)
    {
        var methods = endpoint.Metadata.GetMetadata<IHttpMethodMetadata>()?.HttpMethods ?? [];
        var pattern = (endpoint as RouteEndpoint)?.RoutePattern.RawText ?? endpoint.DisplayName ?? "";
        return string.Join(",", methods) + " " + pattern;
    }

    /// <summary>The answer is a stream that does not end (Server-Sent Events): from another silo it is relayed, not forwarded as one answer.</summary>
    public static TBuilder StreamsFromMachineSilo<TBuilder>(this TBuilder builder)
        where TBuilder : IEndpointConventionBuilder =>
        builder.WithMetadata(new StreamingAnswerMetadata());

    public static TBuilder RunsOnMachineSilo<TBuilder>(this TBuilder builder)
        where TBuilder : IEndpointConventionBuilder =>
        builder.WithMetadata(new MachineRoutedMetadata());

    public static Task InvokeAsync(HttpContext context, RequestDelegate next)
    {
        if (context.GetEndpoint() is not { } endpoint || endpoint.Metadata.GetMetadata<MachineRoutedMetadata>() is null)
        {
            return next(context);
        }
        var name = context.Request.RouteValues["machine"] as string ?? MachineRegistry.DefaultName;
        var registry = context.RequestServices.GetRequiredService<MachineRegistry>();
        // A name that cannot be a machine's is answered here (by the scope's 404): no grain for it.
        if (registry.IsLocal(name) && registry.LocalShortcut || !MachineRegistry.NamePattern().IsMatch(name))
        {
            return next(context);
        }
        return ForwardAsync(context, endpoint, name);
    }

    /// <summary>
    /// The grain call, sent again when Orleans rejected it undelivered (the activation it reached was
    /// ending: deleted, or moving off a stopping silo): not run, so safe to send again, even a POST;
    /// the next activation answers it (or says there is no such machine).
    /// </summary>
    private static Task<ForwardedResponse> ServeAsync(IMachineGrain grain, ForwardedRequest request, CancellationToken cancellationToken) =>
        UntilDelivered(() => grain.Serve(request, cancellationToken), cancellationToken);

    /// <summary>A grain call, sent again (with backoff, about 1.4 s in all) while Orleans rejects it undelivered.</summary>
    internal static async Task<T> UntilDelivered<T>(Func<Task<T>> call, CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await call();
            }
            catch (OrleansMessageRejectionException) when (attempt < 8)
            {
                // The old activation may take a while to end (a snapshot on its way out): back off, up to about 1.4 s in all.
                await Task.Delay(50 * attempt, cancellationToken);
            }
        }
    }

    private static async Task ForwardAsync(HttpContext context, Endpoint endpoint, string name)
    {
        // Read whole: bounded by the endpoint's own body limit, which routing has applied (413 past it).
        using var body = new MemoryStream();
        await context.Request.Body.CopyToAsync(body, context.RequestAborted);
        var request = new ForwardedRequest(
            KeyOf(endpoint),
            context.Request.Method,
            context.Request.Path.Value ?? "/",
            context.Request.QueryString.Value ?? "",
            ForwardedRequestRunner.Travelling(context.Request.Headers),
            [.. context.Request.RouteValues.Where(v => v.Value is string).Select(v => new KeyValuePair<string, string>(v.Key, (string)v.Value!))],
            body.ToArray(),
            context.User.Identity?.IsAuthenticated == true ? context.User.Identity.Name : null,
            [.. context.User.Claims.Where(c => c.Type == System.Security.Claims.ClaimTypes.Role).Select(c => c.Value)],
            context.User.Identity?.AuthenticationType,
            context.Connection.RemoteIpAddress?.ToString());
        var grains = context.RequestServices.GetRequiredService<IGrainFactory>();
        if (endpoint.Metadata.GetMetadata<StreamingAnswerMetadata>() is not null)
        {
            await RelayedAnswer.RelayAsync(context, grains.GetGrain<IMachineGrain>(name), name, request);
            return;
        }
        ForwardedResponse response;
        try
        {
            response = await ServeAsync(grains.GetGrain<IMachineGrain>(name), request, context.RequestAborted);
        }
        catch (Exception failure) when (failure is not OperationCanceledException && ClusterFailures.IsUnavailable(failure))
        {
            await UnavailableAsync(context, name, failure);
            return;
        }
        if (response.NoMachine)
        {
            await Endpoints.MachinesEndpoints.Unknown(name).ExecuteAsync(context);
            return;
        }
        Head(context, response.Status, response.Headers);
        context.Response.ContentLength = response.Body.Length;
        await context.Response.Body.WriteAsync(response.Body, context.RequestAborted);
    }

    /// <summary>
    /// 503 machine-unavailable with Retry-After: the machine's silo did not answer the call (stopping
    /// or lost). A call that timed out may have run there before its silo went quiet, so its detail
    /// says so: a client repeats a POST only after looking (GET the page or the stats), as LoadGen,
    /// which never retries a POST, does not repeat it at all.
    /// </summary>
    internal static Task UnavailableAsync(HttpContext context, string name, Exception failure)
    {
        context.Response.Headers.RetryAfter = "1";
        var ran = failure is TimeoutException || failure.InnerException is TimeoutException
            ? "The call timed out and may have run there: look before repeating a change. "
            : "";
        return Problems.Of(ProblemCatalog.MachineUnavailable, $"Machine '{name}' could not be reached on its silo ({failure.GetType().Name}): "
            + "its silo may be stopping or lost, and the machine is resumed on another from its last snapshot. " + ran + "Try again shortly.").ExecuteAsync(context);
    }

    /// <summary>The status and headers the machine's silo answered with, as its answer's own.</summary>
    internal static void Head(HttpContext context, int status, KeyValuePair<string, string>[] headers)
    {
        context.Response.StatusCode = status;
        foreach (var (header, value) in headers)
        {
            context.Response.Headers.Append(header, value);
        }
    }
}

/// <summary>Which failures of a grain call mean "the machine's silo is not there now" (503, try again) rather than a fault of ours.</summary>
public static class ClusterFailures
{
    public static bool IsUnavailable(Exception failure) =>
        failure is TimeoutException or SiloUnavailableException or OrleansMessageRejectionException
        || failure is OrleansException { InnerException: { } inner } && IsUnavailable(inner);

    /// <summary>
    /// A grain's state could not be read or written (Redis down or slow), or another activation
    /// wrote it first (a version conflict): nothing the call asked for was kept; 503, try again.
    /// </summary>
    public static bool IsStorageFailure(Exception failure) =>
        failure is Orleans.Persistence.Redis.RedisStorageException or Orleans.Storage.InconsistentStateException
        || failure is OrleansException { InnerException: { } inner } && IsStorageFailure(inner); // Orleans wraps the provider's
}
