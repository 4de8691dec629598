using System.Security.Claims;
using Microsoft.AspNetCore.Http.Features;

namespace PageAlloc.Api.Cluster;

/// <summary>
/// Runs, on the silo that holds a machine, a request that arrived at another silo
/// (<see cref="MachineForwarding"/>): the same endpoint the receiving silo matched, with its route
/// values, the caller's identity and the body, through a pipeline of the exception handler and
/// status code pages (what turns errors into ProblemDetails). Everything the request passed before
/// it was forwarded (connection limits, authentication, rate limits, timeouts, the JSON-only
/// guard) ran on the receiving silo and is not run twice.
/// </summary>
public sealed class ForwardedRequestRunner
{
    private readonly IServiceScopeFactory _scopes;
    private readonly Lazy<Dictionary<string, Endpoint>> _endpoints;
    private readonly Lazy<RequestDelegate> _pipeline;

    public ForwardedRequestRunner(IServiceProvider services, IServiceScopeFactory scopes)
    {
        _scopes = scopes;
        // Read on the first forwarded request: by then the app has mapped every endpoint.
        _endpoints = new(() => services.GetRequiredService<EndpointDataSource>().Endpoints
            .Where(e => e.Metadata.GetMetadata<MachineRoutedMetadata>() is not null)
            .GroupBy(MachineForwarding.KeyOf, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.First(), StringComparer.Ordinal));
        _pipeline = new(() =>
        {
            var app = new ApplicationBuilder(services);
            app.UseExceptionHandler();
            app.UseStatusCodePages();
            app.Run(context => context.GetEndpoint()!.RequestDelegate!(context));
            return app.Build();
        });
    }

    public async Task<ForwardedResponse> RunAsync(ForwardedRequest request, CancellationToken cancellationToken)
    {
        if (!_endpoints.Value.TryGetValue(request.Endpoint, out var endpoint))
        {
            // Every silo runs the same build, so this is a silo of another version in the cluster.
            return Text(StatusCodes.Status501NotImplemented, $"The machine's silo has no endpoint '{request.Endpoint}'.");
        }
        using var responseBody = new MemoryStream();
        await using var scope = _scopes.CreateAsyncScope();
        var context = Context(request, endpoint, new StreamResponseBodyFeature(responseBody), scope, cancellationToken);
        await _pipeline.Value(context);
        await context.Response.CompleteAsync();
        return new ForwardedResponse(context.Response.StatusCode, Travelling(context.Response.Headers), responseBody.ToArray(), NoMachine: false);
    }

    /// <summary>
    /// Runs a request whose answer is a stream without end (<see cref="StreamingAnswerMetadata"/>)
    /// into a relay's body (<see cref="StreamRelays"/>): <paramref name="bind"/> gets the response
    /// before the endpoint runs, so the relay's first write can take its status and headers.
    /// </summary>
    public async Task<HttpResponse> RunIntoAsync(ForwardedRequest request, IHttpResponseBodyFeature body, Action<HttpResponse> bind, CancellationToken aborted)
    {
        if (!_endpoints.Value.TryGetValue(request.Endpoint, out var endpoint))
        {
            throw new InvalidOperationException($"The machine's silo has no endpoint '{request.Endpoint}'.");
        }
        await using var scope = _scopes.CreateAsyncScope();
        var context = Context(request, endpoint, body, scope, aborted);
        bind(context.Response);
        await _pipeline.Value(context);
        await context.Response.CompleteAsync();
        return context.Response;
    }

    /// <summary>Headers as they travel between silos (a request's, or its answer's): all but those of one connection.</summary>
    public static KeyValuePair<string, string>[] Travelling(IHeaderDictionary headers) =>
        [.. headers.Where(h => !MachineForwarding.HopHeaders.Contains(h.Key))
            .SelectMany(h => h.Value.Select(v => new KeyValuePair<string, string>(h.Key, v ?? "")))];

    private static DefaultHttpContext Context(ForwardedRequest request, Endpoint endpoint, IHttpResponseBodyFeature body, AsyncServiceScope scope, CancellationToken aborted)
    {
        var requestFeature = new HttpRequestFeature
        {
            Method = request.Method,
            Scheme = "http",
            Protocol = "HTTP/1.1",
            Path = request.Path,
            QueryString = request.QueryString,
            Body = new MemoryStream(request.Body, writable: false),
        };
        foreach (var (name, value) in request.Headers)
        {
            requestFeature.Headers.Append(name, value);
        }
        // The body arrives whole: its length is known, whatever framing (chunked) the client used,
        // which was a hop header. Without it, and without body detection, the framework's own JSON
        // binding reads a forwarded POST as one without a body ("A JSON request body is required").
        requestFeature.Headers.ContentLength = request.Body.Length;
        var features = new FeatureCollection();
        features.Set<IHttpRequestFeature>(requestFeature);
        features.Set<IHttpRequestBodyDetectionFeature>(new ForwardedBody(request.Body.Length > 0));
        features.Set<IHttpResponseFeature>(new HttpResponseFeature());
        features.Set(body);
        features.Set<IHttpRequestLifetimeFeature>(new HttpRequestLifetimeFeature { RequestAborted = aborted });
        features.Set<IHttpConnectionFeature>(new HttpConnectionFeature
        {
            RemoteIpAddress = System.Net.IPAddress.TryParse(request.RemoteAddress, out var client) ? client : null,
        });
        var context = new DefaultHttpContext(features)
        {
            RequestServices = scope.ServiceProvider,
            User = Principal(request),
        };
        context.Items[MachineForwarding.ForwardedItem] = true;
        context.SetEndpoint(endpoint);
        foreach (var (name, value) in request.RouteValues)
        {
            context.Request.RouteValues[name] = value;
        }
        return context;
    }

    /// <summary>Whether the forwarded request has a body, as Kestrel says of one it read.</summary>
    private sealed record ForwardedBody(bool CanHaveBody) : IHttpRequestBodyDetectionFeature;

    private static ClaimsPrincipal Principal(ForwardedRequest request)
    {
        if (request.UserName is null)
        {
            return new ClaimsPrincipal(new ClaimsIdentity());
        }
        var claims = new List<Claim> { new(ClaimTypes.Name, request.UserName) };
        claims.AddRange(request.UserRoles.Select(r => new Claim(ClaimTypes.Role, r)));
        return new ClaimsPrincipal(new ClaimsIdentity(claims, request.AuthenticationType));
    }

    private static ForwardedResponse Text(int status, string text) =>
        new(status, [new("Content-Type", "text/plain; charset=utf-8")], System.Text.Encoding.UTF8.GetBytes(text), NoMachine: false);
}
