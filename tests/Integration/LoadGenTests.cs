using System.Net;
using PageAlloc.LoadGen;
using Polly.CircuitBreaker;
using Polly.Retry;
using Polly.Testing;
using Polly.Timeout;

namespace PageAlloc.Tests.Integration;

public class LoadGenTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static PageAllocClient ClientFor(HttpClient http) =>
        new(http, ResiliencePipelines.Reads(TimeSpan.FromSeconds(5)), ResiliencePipelines.Writes(TimeSpan.FromSeconds(5)));

    [Theory]
    [InlineData("seed", "chunked")]
    [InlineData("seed", "per-page")]
    [InlineData("mixed", "chunked")]
    [InlineData("vmalloc", "upstream")]
    public async Task Workload_ShortRun_FreesEveryPage_AndMatchesTheServersStats(string workload, string strategy)
    {
        await using var app = new PageAllocApp();
        var options = new LoadOptions { Workload = workload, Strategy = strategy, Concurrency = 4, Requests = 60, Pages = 24, LiveBlocks = 8 };

        var report = await LoadRunner.RunAsync(ClientFor(app.CreateClient()), options, progress: null, Ct);

        Assert.True(report.EveryPageFreed, $"{report.PagesAllocated} allocated, {report.PagesFreed} freed");
        Assert.Empty(report.ErrorsByStatus);
        Assert.True(report.Requests >= 60);
        Assert.Equal(0, report.Server.AllocatedPagesChange);
        Assert.Equal(report.PagesAllocated, report.Server.PagesAllocated);
        Assert.Equal(report.PagesFreed, report.Server.PagesFreed);
        Assert.Contains(report.Operations, o => o.Operation == "alloc_pages" && o.P99Ms >= o.P50Ms);
    }

    [Fact]
    public void Reads_AreRetried_ThenBroken_ThenTimedOutPerAttempt()
    {
        var descriptor = ResiliencePipelines.Reads(TimeSpan.FromSeconds(2)).GetPipelineDescriptor();

        Assert.Collection(descriptor.Strategies,
            s => Assert.IsType<RetryStrategyOptions<HttpResponseMessage>>(s.Options),
            s => Assert.IsType<CircuitBreakerStrategyOptions<HttpResponseMessage>>(s.Options),
            s => Assert.Equal(TimeSpan.FromSeconds(2), Assert.IsType<TimeoutStrategyOptions>(s.Options).Timeout));
    }

    [Fact]
    public void Writes_HaveNoRetry()
    {
        var descriptor = ResiliencePipelines.Writes(TimeSpan.FromSeconds(2)).GetPipelineDescriptor();

        Assert.DoesNotContain(descriptor.Strategies, s => s.Options is RetryStrategyOptions<HttpResponseMessage>);
        Assert.Collection(descriptor.Strategies,
            s => Assert.IsType<CircuitBreakerStrategyOptions<HttpResponseMessage>>(s.Options),
            s => Assert.IsType<TimeoutStrategyOptions>(s.Options));
    }

    [Fact]
    public async Task AllocPages_ServerError_IsSentOnce_WhileStatsAreRetried()
    {
        var handler = new CountingHandler(HttpStatusCode.ServiceUnavailable);
        var client = ClientFor(new HttpClient(handler) { BaseAddress = new Uri("http://pagealloc.test") });

        var alloc = await client.AllocPages("Normal", 0, "GFP_KERNEL", 0, Ct);
        var stats = await client.GetStats(Ct);

        Assert.Equal(503, alloc.Status);
        Assert.Equal(1, handler.Posts);
        Assert.Equal(503, stats.Status);
        Assert.Equal(4, handler.Gets); // the first try and 3 retries
    }

    [Fact]
    public async Task AllocPages_TransportFailure_IsNotRetried()
    {
        var handler = new CountingHandler(null);
        var client = ClientFor(new HttpClient(handler) { BaseAddress = new Uri("http://pagealloc.test") });

        var alloc = await client.AllocPages("Normal", 0, "GFP_KERNEL", 0, Ct);

        Assert.Equal(0, alloc.Status);
        Assert.Equal(nameof(HttpRequestException), alloc.Failure);
        Assert.Equal(1, handler.Posts);
    }

    [Theory]
    [InlineData("10s", 10.0)]
    [InlineData("500ms", 0.5)]
    [InlineData("2m", 120.0)]
    [InlineData("3", 3.0)]
    public void Duration_ParsesUnits(string text, double seconds) =>
        Assert.Equal(TimeSpan.FromSeconds(seconds), LoadOptions.ParseDuration(text));

    [Theory]
    [InlineData("--workload", "fragment")]
    [InlineData("--concurrency", "0")]
    [InlineData("--strategy", "fast")]
    [InlineData("--bogus", "1")]
    public void Options_Invalid_AreRefused(string flag, string value) =>
        Assert.Throws<FormatException>(() => LoadOptions.Parse([flag, value]));

    /// <summary>Answers every request with one status (or fails the connection when null) and counts them.</summary>
    private sealed class CountingHandler(HttpStatusCode? status) : HttpMessageHandler
    {
        private int _posts;
        private int _gets;

        public int Posts => _posts;

        public int Gets => _gets;

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref request.Method == HttpMethod.Post ? ref _posts : ref _gets);
            return status is { } s
                ? Task.FromResult(new HttpResponseMessage(s))
                : Task.FromException<HttpResponseMessage>(new HttpRequestException("connection refused"));
        }
    }
}
