using System.Net;
using Polly;
using Polly.CircuitBreaker;
using Polly.Retry;
using Polly.Timeout;

namespace PageAlloc.LoadGen;

/// <summary>
/// The two Polly pipelines of the load generator's HTTP client (outermost first), applied by
/// <see cref="ResilienceHandler"/> according to the request's method:
/// <list type="bullet">
/// <item>reads (GET, idempotent): retry (3, exponential with jitter, on transport errors,
/// timeouts and 5xx) → circuit breaker → per-attempt timeout;</item>
/// <item>writes (POST alloc/split/free, not idempotent): circuit breaker → per-attempt timeout.
/// Never retried: a retried alloc_pages whose first attempt succeeded on the server would leak
/// pages, and a retried free would turn into a double free.</item>
/// </list>
/// A load generator counts failures rather than hiding them, so the breaker only stops a run
/// from hammering a server that is down.
/// </summary>
public static class ResiliencePipelines
{
    public static ResiliencePipeline<HttpResponseMessage> Reads(TimeSpan attemptTimeout, TimeProvider? time = null) =>
        new ResiliencePipelineBuilder<HttpResponseMessage> { TimeProvider = time ?? TimeProvider.System }
            .AddRetry(new RetryStrategyOptions<HttpResponseMessage>
            {
                MaxRetryAttempts = 3,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                Delay = TimeSpan.FromMilliseconds(100),
                ShouldHandle = new PredicateBuilder<HttpResponseMessage>()
                    .Handle<HttpRequestException>()
                    .Handle<TimeoutRejectedException>()
                    .HandleResult(r => r.StatusCode >= HttpStatusCode.InternalServerError),
            })
            .AddCircuitBreaker(BreakerOptions())
            .AddTimeout(attemptTimeout)
            .Build();

    public static ResiliencePipeline<HttpResponseMessage> Writes(TimeSpan attemptTimeout, TimeProvider? time = null) =>
        new ResiliencePipelineBuilder<HttpResponseMessage> { TimeProvider = time ?? TimeProvider.System }
            .AddCircuitBreaker(BreakerOptions())
            .AddTimeout(attemptTimeout)
            .Build();

    /// <summary>Opens when half of at least 20 calls in 10 s fail at the transport or with a 5xx other than 507.</summary>
    private static CircuitBreakerStrategyOptions<HttpResponseMessage> BreakerOptions() => new()
    {
        FailureRatio = 0.5,
        MinimumThroughput = 20,
        SamplingDuration = TimeSpan.FromSeconds(10),
        BreakDuration = TimeSpan.FromSeconds(5),
        ShouldHandle = new PredicateBuilder<HttpResponseMessage>()
            .Handle<HttpRequestException>()
            .Handle<TimeoutRejectedException>()
            .HandleResult(r => r.StatusCode >= HttpStatusCode.InternalServerError && r.StatusCode != HttpStatusCode.InsufficientStorage),
    };
}

/// <summary>
/// Runs each request of the generated client through the pipeline its method allows: GET and HEAD
/// through the reads pipeline (retried), every other method through the writes pipeline (never retried).
/// The rule lives here, under the client, so no call site can retry a POST by mistake.
/// </summary>
public sealed class ResilienceHandler(ResiliencePipeline<HttpResponseMessage> reads, ResiliencePipeline<HttpResponseMessage> writes) : DelegatingHandler
{
    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var pipeline = request.Method == HttpMethod.Get || request.Method == HttpMethod.Head ? reads : writes;
        // Below HttpClient a message may go to the inner handler again: a retried GET resends the same one.
        return await pipeline.ExecuteAsync(async token => await base.SendAsync(request, token), cancellationToken);
    }
}
