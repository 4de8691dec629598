using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using Polly;

namespace PageAlloc.LoadGen;

/// <summary>
/// A typed client for the PageAlloc API. Every call returns a <see cref="CallResult"/> with the
/// status and the latency, so workloads can count failures instead of throwing. GETs go through
/// the read pipeline (retried), POSTs through the write pipeline (never retried).
/// </summary>
public sealed class PageAllocClient(HttpClient http, ResiliencePipeline<HttpResponseMessage> reads, ResiliencePipeline<HttpResponseMessage> writes)
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public Task<CallResult> AllocPages(string zone, int order, string gfp, int cpu, CancellationToken ct) =>
        Post($"/zones/{zone}/alloc_pages", new { order, gfp, cpu }, ct);

    public Task<CallResult> SplitPage(string zone, long pfn, int order, CancellationToken ct) =>
        Post($"/zones/{zone}/split_page", new { pfn, order }, ct);

    public Task<CallResult> FreePages(string zone, long pfn, int order, int cpu, CancellationToken ct) =>
        Post($"/zones/{zone}/free_pages", new { pfn, order, cpu }, ct);

    public Task<CallResult> FreeContigRange(string zone, long pfn, long nrPages, string strategy, int cpu, CancellationToken ct) =>
        Post($"/zones/{zone}/free_contig_range", new { pfn, nrPages, strategy, cpu }, ct);

    public Task<CallResult> FreePagesBulk(string zone, long[] pfns, string strategy, int cpu, CancellationToken ct) =>
        Post($"/zones/{zone}/free_pages_bulk", new { pfns, strategy, cpu }, ct);

    public Task<CallResult> GetStats(CancellationToken ct) => Send(reads, static (h, ct) => h.GetAsync("/stats", ct), ct);

    private Task<CallResult> Post(string path, object body, CancellationToken ct) =>
        Send(writes, (h, ct) => h.PostAsJsonAsync(path, body, Json, ct), ct);

    private async Task<CallResult> Send(
        ResiliencePipeline<HttpResponseMessage> pipeline, Func<HttpClient, CancellationToken, Task<HttpResponseMessage>> call, CancellationToken ct)
    {
        var start = Stopwatch.GetTimestamp();
        try
        {
            using var response = await pipeline.ExecuteAsync(async token => await call(http, token), ct);
            var text = await response.Content.ReadAsStringAsync(ct);
            var body = text.Length > 0 && text[0] == '{' ? JsonNode.Parse(text) : null;
            return new CallResult((int)response.StatusCode, body, Stopwatch.GetElapsedTime(start));
        }
        catch (Exception e) when (e is HttpRequestException or Polly.Timeout.TimeoutRejectedException or Polly.CircuitBreaker.BrokenCircuitException)
        {
            return new CallResult(0, null, Stopwatch.GetElapsedTime(start), e.GetType().Name);
        }
    }
}

/// <summary>One call: HTTP status (0 when no response came), the JSON body, latency, and the failure's name.</summary>
public sealed record CallResult(int Status, JsonNode? Body, TimeSpan Latency, string? Failure = null)
{
    public bool IsSuccess => Status is >= 200 and < 300;

    public long Pfn => Body!["pfn"]!.GetValue<long>();
}
