using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using PageAlloc.Api.Endpoints;
using PageAlloc.Api.Machines;

namespace PageAlloc.Tests.Integration;

/// <summary>
/// What one client may hold of what all share: event streams per key, one alloc_contig_pages scan
/// per machine, a few /metrics scrapes a second; and every refusal saying when to come back.
/// </summary>
public class FairShareTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task EventStreams_AreLimitedPerKey_BesideTheGlobalLimit()
    {
        await using var app = SecurityTests.WithKeys(("Limits:EventListenersPerKey", "1"));
        var (alice, bob) = (SecurityTests.As(app, SecurityTests.AliceKey), SecurityTests.As(app, SecurityTests.BobKey));

        using var first = await alice.GetAsync("/events?format=perf-script", HttpCompletionOption.ResponseHeadersRead, Ct);
        using var second = await alice.GetAsync("/events?format=perf-script", HttpCompletionOption.ResponseHeadersRead, Ct);
        using var bobs = await bob.GetAsync("/events?format=perf-script", HttpCompletionOption.ResponseHeadersRead, Ct);

        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.Equal(HttpStatusCode.TooManyRequests, second.StatusCode);
        Assert.Contains("Limits:EventListenersPerKey", await second.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
        Assert.Equal(TimeSpan.FromSeconds(1), second.Headers.RetryAfter?.Delta);
        Assert.Equal(HttpStatusCode.OK, bobs.StatusCode);
        Assert.Equal(2, app.Services.GetRequiredService<EventStreams>().Open);
    }

    [Fact]
    public async Task WithKeysOff_EventStreams_AreLimitedPerClientAddress()
    {
        await using var app = PageAllocApp.OnKestrel(("Limits:EventListenersPerClient", "2"));
        using var one = From(app.Address, "127.0.0.1");
        using var other = From(app.Address, "127.0.0.2"); // another client: Linux's loopback answers all of 127/8

        var first = await one.GetAsync("/events?format=perf-script", HttpCompletionOption.ResponseHeadersRead, Ct);
        var second = await one.GetAsync("/events?format=perf-script", HttpCompletionOption.ResponseHeadersRead, Ct);
        using var third = await one.GetAsync("/events?format=perf-script", HttpCompletionOption.ResponseHeadersRead, Ct);
        using var others = await other.GetAsync("/events?format=perf-script", HttpCompletionOption.ResponseHeadersRead, Ct);

        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.Equal(HttpStatusCode.OK, second.StatusCode);
        Assert.Equal(HttpStatusCode.TooManyRequests, third.StatusCode);
        var refusal = await third.Content.ReadAsStringAsync(Ct);
        Assert.Contains("127.0.0.1 has 2 event streams open already (Limits:EventListenersPerClient)", refusal, StringComparison.Ordinal);
        Assert.Equal(TimeSpan.FromSeconds(1), third.Headers.RetryAfter?.Delta);
        Assert.Equal(HttpStatusCode.OK, others.StatusCode);
        var streams = app.Services.GetRequiredService<EventStreams>();
        Assert.Equal(3, streams.Open);

        // A closed stream gives its client's place back.
        first.Dispose();
        for (var waited = 0; streams.Open != 2; waited += 50)
        {
            Assert.True(waited < 10_000, "the closed stream's place within 10 s");
            await Task.Delay(50, Ct);
        }
        using var again = await one.GetAsync("/events?format=perf-script", HttpCompletionOption.ResponseHeadersRead, Ct);
        Assert.Equal(HttpStatusCode.OK, again.StatusCode);
        second.Dispose();
    }

    /// <summary>A client whose connections come from <paramref name="local"/>.</summary>
    private static HttpClient From(Uri server, string local) => new(new SocketsHttpHandler
    {
        ConnectCallback = async (context, cancellationToken) =>
        {
            var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
            socket.Bind(new IPEndPoint(IPAddress.Parse(local), 0));
            await socket.ConnectAsync(context.DnsEndPoint, cancellationToken);
            return new NetworkStream(socket, ownsSocket: true);
        },
    }) { BaseAddress = server };

    [Fact]
    public async Task AllocContigPages_RunsOneScanAtATimePerMachine_OthersGet429WithRetryAfter()
    {
        await using var app = new PageAllocApp();
        var client = app.CreateClient();
        await client.PostOk("/machines", new { name = "other" }, 201);
        var registry = app.Services.GetRequiredService<MachineRegistry>();

        // A scan holds default's slot (taken here as a running scan takes it).
        Assert.True(registry.Find("default", null)!.TryStartContigScan());
        try
        {
            var busy = await client.PostAsJsonAsync("/zones/Normal/alloc_contig_pages", new { nrPages = 512 }, Ct);
            Assert.Equal(HttpStatusCode.TooManyRequests, busy.StatusCode);
            Assert.Equal(TimeSpan.FromSeconds(1), busy.Headers.RetryAfter?.Delta);
            Assert.Contains("too-many-requests", await busy.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
            // Another machine's scan is not held up by it.
            await client.PostOk("/machines/other/zones/Normal/alloc_contig_pages", new { nrPages = 512 }, 201);
        }
        finally
        {
            registry.Find("default", null)!.EndContigScan();
        }
        await client.PostOk("/zones/Normal/alloc_contig_pages", new { nrPages = 512 }, 201);
        // A scan that is refused or fails gives the slot back as well.
        await client.PostOk("/zones/Normal/alloc_contig_pages", new { nrPages = 1L << 22 }, 507);
        Assert.True(registry.Find("default", null)!.TryStartContigScan());
        registry.Find("default", null)!.EndContigScan();
    }

    [Fact]
    public async Task Metrics_AreScrapedAtMostAFewTimesASecond_429WithRetryAfterBeyond()
    {
        await using var app = new PageAllocApp(("Limits:MetricsScrapesPerSecond", "2"));
        var client = app.CreateClient();

        var scrapes = new List<HttpResponseMessage>();
        for (var i = 0; i < 6; i++)
        {
            scrapes.Add(await client.GetAsync("/metrics", Ct));
        }

        // A fixed window of a second: the six scrapes fall in at most two windows (they take well under a second).
        Assert.InRange(scrapes.Count(r => r.StatusCode == HttpStatusCode.OK), 2, 4);
        var refused = scrapes.First(r => r.StatusCode == HttpStatusCode.TooManyRequests);
        Assert.NotNull(refused.Headers.RetryAfter?.Delta);
        Assert.Equal("application/problem+json", refused.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task Metrics_TakeAKey_WhenMetricsRequireKeyIsOn()
    {
        await using var app = SecurityTests.WithKeys(("Metrics:RequireKey", "true"));

        var anonymous = await app.CreateClient().GetAsync("/metrics", Ct);
        var keyed = await SecurityTests.As(app, SecurityTests.BobKey).GetAsync("/metrics", Ct);

        Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
        Assert.Equal(HttpStatusCode.OK, keyed.StatusCode);
    }

    [Fact]
    public async Task ATestAlreadyRunning_Is429WithRetryAfter()
    {
        await using var app = PageAllocApp.OnKestrel();
        using var client = new HttpClient { BaseAddress = app.Address };
        // A probe that reaches the one permit before the long run has the run refused instead; then
        // the scenario is tried again (at most three times), so the assertion is about the 429, not the race.
        HttpResponseMessage? refused = null;
        for (var attempt = 0; attempt < 3 && refused is null; attempt++)
        {
            using var gone = CancellationTokenSource.CreateLinkedTokenSource(Ct);
            var running = client.PostAsJsonAsync("/tests/page_alloc_high_order", new { iterations = 100_000 }, gone.Token);
            await Task.Delay(300, Ct);
            try
            {
                for (var i = 0; i < 100 && refused is null && !running.IsCompleted; i++)
                {
                    var probe = await client.PostAsJsonAsync("/tests/page_alloc_high_order", new { iterations = 0 }, Ct);
                    if (probe.StatusCode == HttpStatusCode.TooManyRequests)
                    {
                        refused = probe;
                    }
                    else
                    {
                        probe.Dispose(); // a probe that ran: its answer is not needed
                    }
                    await Task.Delay(20, Ct);
                }
            }
            finally
            {
                await gone.CancelAsync(); // the long run is not needed past the refusal (it may have ended already)
                try
                {
                    (await running).Dispose();
                }
                catch (OperationCanceledException)
                {
                }
            }
        }
        Assert.NotNull(refused);
        Assert.Equal(TimeSpan.FromSeconds(1), refused.Headers.RetryAfter?.Delta);
    }
}

/// <summary>Statuses that say what happened: a body too large or too slow, a refusal before the body was read.</summary>
public class BodyStatusTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task AChunkedBody_PastTheLimit_Is413_NotAMissingBody()
    {
        await using var app = PageAllocApp.OnKestrel();
        using var client = new HttpClient { BaseAddress = app.Address };
        var padded = """{"order":0,"cpu":0""" + new string(' ', 8 << 10) + "}";
        var content = new Chunked(Encoding.UTF8.GetBytes(padded));

        var response = await client.PostAsync("/zones/Normal/alloc_pages", content, Ct);

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        Assert.Contains("body-too-large", await response.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
    }

    [Fact]
    public async Task ABodyThatArrivesTooSlowly_Is408()
    {
        await using var app = PageAllocApp.OnKestrel();
        using var socket = new TcpClient();
        await socket.ConnectAsync(app.Address.Host, app.Address.Port, Ct);
        var stream = socket.GetStream();
        await stream.WriteAsync("POST /zones/Normal/alloc_pages HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{"u8.ToArray(), Ct);

        // Kestrel's minimum body rate (240 bytes/s after a 5 s grace) ends the wait after about 6 s.
        var answer = await ReadAll(stream, TimeSpan.FromSeconds(20));

        Assert.StartsWith("HTTP/1.1 408", answer, StringComparison.Ordinal);
        Assert.Contains("request-timeout", answer, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A415_BeforeALargeBodyIsRead_SaysTheConnectionCloses()
    {
        await using var app = PageAllocApp.OnKestrel();
        using var socket = new TcpClient();
        await socket.ConnectAsync(app.Address.Host, app.Address.Port, Ct);
        var stream = socket.GetStream();
        var body = new string('a', 16 << 10);
        await stream.WriteAsync(Encoding.ASCII.GetBytes(
            $"POST /zones/Normal/alloc_pages HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain\r\nContent-Length: {body.Length}\r\n\r\n{body}"), Ct);

        var answer = await ReadAll(stream, TimeSpan.FromSeconds(10));

        Assert.StartsWith("HTTP/1.1 415", answer, StringComparison.Ordinal);
        Assert.Contains("Connection: close", answer, StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>A JSON body without a length: HttpClient sends it chunked.</summary>
    private sealed class Chunked : HttpContent
    {
        private readonly byte[] _bytes;

        public Chunked(byte[] bytes)
        {
            _bytes = bytes;
            Headers.ContentType = new("application/json");
        }

        protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) => stream.WriteAsync(_bytes, Ct).AsTask();

        protected override bool TryComputeLength(out long length)
        {
            length = 0;
            return false;
        }
    }

    /// <summary>Everything the server sends until it closes the connection (or the time is up).</summary>
    private static async Task<string> ReadAll(NetworkStream stream, TimeSpan within)
    {
        using var wait = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        wait.CancelAfter(within);
        var all = new MemoryStream();
        var buffer = new byte[4096];
        try
        {
            int read;
            while ((read = await stream.ReadAsync(buffer, wait.Token)) > 0)
            {
                all.Write(buffer, 0, read);
            }
        }
        catch (Exception e) when (e is IOException or OperationCanceledException && all.Length > 0)
        {
            // a reset after the answer, or a kept-alive connection: what came is the answer
        }
        return Encoding.ASCII.GetString(all.ToArray());
    }
}
