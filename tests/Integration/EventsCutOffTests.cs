using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.DependencyInjection;
using PageAlloc.Api.Endpoints;

namespace PageAlloc.Tests.Integration;

/// <summary>
/// A reader that never reads: once the socket between it and the server is full its stream falls
/// behind its buffer, and when it has not taken even the lost line within StreamStop.CatchUp (2 s)
/// its connection is cut off and its place given back, while page calls go on.
/// </summary>
public class EventsCutOffTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task AStreamWhoseReaderNeverReads_IsCutOff_AndItsPlaceGivenBack()
    {
        // Small buffers all the way (Kestrel's response buffer, the server socket's send buffer, the
        // reader's receive buffer), so that a few hundred events fill the path.
        await using var app = PageAllocApp.OnKestrel(services =>
        {
            services.Configure<KestrelServerOptions>(kestrel => kestrel.Limits.MaxResponseBufferSize = 1024);
            services.Configure<SocketTransportOptions>(sockets => sockets.CreateBoundListenSocket = endpoint =>
            {
                var listen = SocketTransportOptions.CreateDefaultBoundListenSocket(endpoint);
                listen.SendBufferSize = 4096; // accepted sockets inherit it
                return listen;
            });
        }, ("Limits:EventBufferEvents", "16"));
        var streams = app.Services.GetRequiredService<EventStreams>();
        using var stuck = new TcpClient { ReceiveBufferSize = 4096 };
        await stuck.ConnectAsync(app.Address.Host, app.Address.Port, Ct);
        await stuck.GetStream().WriteAsync(Encoding.ASCII.GetBytes(
            $"GET /events?events=mm_page_alloc,mm_page_free HTTP/1.1\r\nHost: {app.Address.Authority}\r\n\r\n"), Ct);
        for (var waited = 0; streams.Open == 0; waited += 10)
        {
            Assert.True(waited < 10_000, "the stream opens");
            await Task.Delay(10, Ct);
        }

        // Page calls at the pace of one client, until the stream is gone (or 30 s): they fill the
        // path, then the stream's buffer, and then its reader has 2 s to read the lost line.
        using var client = new HttpClient { BaseAddress = app.Address };
        var clock = Stopwatch.StartNew();
        var pairs = 0;
        while (streams.Open != 0 && clock.Elapsed < TimeSpan.FromSeconds(30))
        {
            var pfn = (await client.PostOk("/zones/Normal/alloc_pages", new { order = 0 }, 201))["pfn"]!.GetValue<long>();
            await client.PostOk("/zones/Normal/free_pages", new { pfn, order = 0 });
            pairs++;
        }
        Assert.True(streams.Open == 0, $"the stream is still open after {pairs} alloc/free pairs in {clock.Elapsed.TotalSeconds:F1} s");

        // What the reader finds when it reads at last: events, then the connection cut, not the
        // chunked body's end (a stream that ended would close with "0\r\n\r\n").
        var received = new MemoryStream();
        var buffer = new byte[64 * 1024];
        try
        {
            using var patience = CancellationTokenSource.CreateLinkedTokenSource(Ct);
            patience.CancelAfter(TimeSpan.FromSeconds(10));
            int read;
            while ((read = await stuck.GetStream().ReadAsync(buffer, patience.Token)) > 0)
            {
                received.Write(buffer, 0, read);
            }
        }
        catch (IOException)
        {
            // reset by the server: as expected of a cut-off
        }
        var text = Encoding.ASCII.GetString(received.ToArray());
        Assert.StartsWith("HTTP/1.1 200 OK", text, StringComparison.Ordinal);
        Assert.Contains("event: mm_page_", text, StringComparison.Ordinal);
        Assert.False(text.EndsWith("0\r\n\r\n", StringComparison.Ordinal), "the stream ended cleanly instead of being cut off");
    }
}
