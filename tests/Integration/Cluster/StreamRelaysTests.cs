using System.Text;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using PageAlloc.Api.Cluster;

namespace PageAlloc.Tests.Integration.Cluster;

/// <summary>
/// The machine's side of a relayed event stream (StreamRelays), on a fake clock: a relay whose
/// reader's silo stops pulling (it went away without a word) ends after StreamRelays.IdleTimeout,
/// and its endpoint's stream with it; one that is pulled stays.
/// </summary>
public sealed class StreamRelaysTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task ARelayNobodyPulls_EndsAfterItsIdleTimeout_AndItsStreamWithIt()
    {
        var time = new FakeTimeProvider();
        using var relays = new StreamRelays(time, NullLogger<StreamRelays>.Instance);
        var (watched, endpointEnded) = await OpenEndlessStream(relays);
        var (pulled, _) = await OpenEndlessStream(relays);

        var first = await relays.ReadAsync(watched, Ct);
        Assert.Equal("data: hello\n\n", Encoding.UTF8.GetString(first.Bytes));
        Assert.False(first.Ended);

        // 20 s without a pull is not idle; the other relay's reader pulls then.
        time.Advance(TimeSpan.FromSeconds(20));
        Assert.Equal(2, relays.Open);
        await relays.ReadAsync(pulled, Ct);

        // Past 30 s since its last pull (the sweep runs every 10 s), the first is ended: its
        // endpoint's stream is cancelled as for a client gone, and a late pull finds it over.
        time.Advance(TimeSpan.FromSeconds(20));
        Assert.Equal(1, relays.Open);
        await endpointEnded.WaitAsync(TimeSpan.FromSeconds(10), Ct);
        Assert.True((await relays.ReadAsync(watched, Ct)).Ended);

        // The pulled one goes on until it too is left alone for 30 s.
        Assert.False((await relays.ReadAsync(pulled, Ct)).Ended);
        time.Advance(TimeSpan.FromSeconds(40));
        Assert.Equal(0, relays.Open);
    }

    /// <summary>A relayed answer that writes one event and then waits until it is aborted (as an idle /events stream does).</summary>
    private static async Task<(Guid Id, Task Ended)> OpenEndlessStream(StreamRelays relays)
    {
        var ended = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var opened = await relays.OpenAsync("watched", async (body, aborted, bind) =>
        {
            var context = new DefaultHttpContext();
            context.Response.StatusCode = StatusCodes.Status200OK;
            bind(context.Response);
            await body.Stream.WriteAsync("data: hello\n\n"u8.ToArray(), aborted);
            try
            {
                await Task.Delay(Timeout.Infinite, aborted);
            }
            finally
            {
                ended.TrySetResult();
            }
            return context.Response;
        });
        Assert.Equal(StatusCodes.Status200OK, opened.Status);
        return (opened.Id, ended.Task);
    }
}
