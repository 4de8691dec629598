using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;

namespace PageAlloc.Tests.Integration;

/// <summary>
/// The bounds that keep one client from taking the service down: connections, bodies, response
/// sizes, run time. The connection and body limits are Kestrel's, so those tests run on a real
/// socket.
/// </summary>
public class ResourceLimitTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task IdleConnectionsBeyondTheLimit_AreClosed_AndTheServiceStillAnswers()
    {
        await using var app = PageAllocApp.OnKestrel(("Limits:MaxConcurrentConnections", "9"), ("Limits:HealthConnections", "1"));
        var address = app.Address;
        var held = new List<TcpClient>();
        try
        {
            // Eight connections, each answered once (so Kestrel has surely accepted it), then left idle.
            for (var i = 0; i < 8; i++)
            {
                var connection = await Connect(address);
                held.Add(connection);
                await connection.GetStream().WriteAsync("GET /health/live HTTP/1.1\r\nHost: localhost\r\n\r\n"u8.ToArray(), Ct);
                Assert.True(await connection.GetStream().ReadAsync(new byte[4096], Ct) > 0);
            }
            // The ninth is kept for health probes (Limits:HealthConnections): held too, idle.
            held.Add(await Connect(address));
            await WaitUntil(() => Task.FromResult(app.Services.GetRequiredService<PageAlloc.Api.Infrastructure.ConnectionFairness>().Open == 9));
            // Each further socket is accepted and closed at once: the read sees the end of the stream.
            for (var i = 0; i < 8; i++)
            {
                using var extra = await Connect(address);
                using var wait = CancellationTokenSource.CreateLinkedTokenSource(Ct);
                wait.CancelAfter(TimeSpan.FromSeconds(20));
                Assert.True(await ReadsEndOfStream(extra, wait.Token), "a connection beyond the limit was served");
            }
        }
        finally
        {
            held.ForEach(c => c.Dispose());
        }

        using var client = new HttpClient { BaseAddress = address };
        await WaitUntil(async () =>
        {
            try
            {
                return (await client.GetAsync("/health/live", Ct)).StatusCode == HttpStatusCode.OK;
            }
            catch (HttpRequestException)
            {
                return false; // a slot not yet released by the closed connections
            }
        });
    }

    [Fact]
    public async Task PageCallBodies_AboveTheirLimit_Get413_AndBulkFreesTakeLargerBodies()
    {
        await using var app = PageAllocApp.OnKestrel();
        using var client = new HttpClient { BaseAddress = app.Address };

        var padded = """{"order":0,"cpu":0""" + new string(' ', 8 << 10) + "}";
        var big = await client.PostAsync("/zones/Normal/alloc_pages", new StringContent(padded, Encoding.UTF8, "application/json"), Ct);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, big.StatusCode);
        Assert.Equal("application/problem+json", big.Content.Headers.ContentType?.MediaType);

        // 100000 pfns (~800 KB) are a valid vfree of 100000 pages: refused as free pages, not for size.
        var pfns = string.Join(",", Enumerable.Range(0, 100_000).Select(i => 1048576 + i));
        var bulk = await client.PostAsync("/zones/Normal/free_pages_bulk", new StringContent($$"""{"pfns":[{{pfns}}]}""", Encoding.UTF8, "application/json"), Ct);
        Assert.Equal(HttpStatusCode.Conflict, bulk.StatusCode);
        Assert.Equal(0, (await new PageAlloc.Client.PageAllocClient(client).GetStatsAsync("default", Ct)).Totals.AllocatedPages);
    }

    [Fact]
    public async Task Responses_CarryNoServerHeader()
    {
        await using var app = PageAllocApp.OnKestrel();
        using var client = new HttpClient { BaseAddress = app.Address };

        var response = await client.GetAsync("/zones", Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Empty(response.Headers.Server);
    }

    [Fact]
    public async Task RangeFree_ListsChunksOnlyWhenAsked_AndNeverMoreThanTheLimit()
    {
        await using var app = new PageAllocApp(("Limits:ChunkListLimit", "16"));
        var api = app.Api();
        var pfn = (await api.AllocPagesAsync("default", "Normal", new() { Order = 10, Cpu = 0 }, Ct)).Pfn;
        await api.SplitPageAsync("default", "Normal", new() { Pfn = pfn, Order = 10 }, Ct);
        var perPage = PageAlloc.Client.FreeStrategy.PerPage;
        var half = await api.FreeContigRangeAsync("default", "Normal", null, new() { Pfn = pfn, NrPages = 512, Strategy = perPage, Cpu = 0 }, Ct);
        var rest = await api.FreeContigRangeAsync("default", "Normal", listChunks: true, new() { Pfn = pfn + 512, NrPages = 512, Strategy = perPage, Cpu = 0 }, Ct);

        Assert.Null(half.Chunks);
        Assert.Equal(512, half.ChunksByOrder[0]);
        Assert.Equal(16, rest.Chunks!.Count);
        Assert.Equal(512 - 16, rest.ChunksUnlisted);
        Assert.Equal(512, rest.ChunksByOrder[0]);
    }

    [Fact]
    public async Task HighOrderTest_WhoseClientGoesAway_StopsAndFreesItsSlot()
    {
        await using var app = PageAllocApp.OnKestrel();
        using var client = new HttpClient { BaseAddress = app.Address };
        using var gone = CancellationTokenSource.CreateLinkedTokenSource(Ct);

        // All three strategies, 100000 iterations: seconds of work, abandoned after a moment.
        var abandoned = client.PostAsJsonAsync("/tests/page_alloc_high_order", new { iterations = 100_000 }, gone.Token);
        await Task.Delay(300, Ct);
        await gone.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => abandoned);

        // One run at a time: the next request is admitted as soon as the abandoned run has stopped.
        // The probe is refused by validation once admitted (400; 429 while the slot is held), so it
        // measures the slot, not a run of its own (whose first warm-up takes seconds).
        var started = DateTime.UtcNow;
        await WaitUntil(async () => (await client.PostAsJsonAsync("/tests/page_alloc_high_order", new { iterations = 0 }, Ct)).StatusCode == HttpStatusCode.BadRequest);
        Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(2), $"the abandoned run held its slot for {DateTime.UtcNow - started}");
    }

    [Fact]
    public async Task HighOrderTest_PastItsTimeout_Is504()
    {
        await using var app = new PageAllocApp(("Limits:TestTimeoutSeconds", "1"));
        var client = app.CreateClient();

        var response = await client.PostAsJsonAsync("/tests/page_alloc_high_order", new { iterations = 100_000, strategy = "per-page" }, Ct);

        Assert.Equal(HttpStatusCode.GatewayTimeout, response.StatusCode);
    }

    /// <summary>True when the server closes the connection (end of stream, or a reset) before sending anything.</summary>
    private static async Task<bool> ReadsEndOfStream(TcpClient client, CancellationToken cancellationToken)
    {
        try
        {
            return await client.GetStream().ReadAsync(new byte[1], cancellationToken) == 0;
        }
        catch (IOException)
        {
            return true;
        }
    }

    private static async Task<TcpClient> Connect(Uri address)
    {
        var client = new TcpClient();
        await client.ConnectAsync(address.Host, address.Port, Ct);
        return client;
    }

    private static async Task WaitUntil(Func<Task<bool>> condition)
    {
        for (var i = 0; i < 100; i++)
        {
            if (await condition())
            {
                return;
            }
            await Task.Delay(50, Ct);
        }
        Assert.Fail("the condition did not hold within 5 s");
    }
}
