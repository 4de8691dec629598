using System.Collections.Concurrent;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using PageAlloc.Client;

namespace PageAlloc.Tests.Integration;

/// <summary>What the service logs: the machine it booted, each reset, and (at Debug) the allocations it refused.</summary>
public class LogTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Boot_Reset_AndARefusedAllocation_AreLogged_WithTheirValues()
    {
        var recorder = new LogRecorder();
        await using var app = new PageAllocApp(("Logging:LogLevel:PageAlloc", "Debug"));
        await using var logged = app.WithWebHostBuilder(b => b.ConfigureServices(s => s.AddLogging(l => l.AddProvider(recorder))));
        var api = new PageAllocClient(logged.CreateClient());

        await api.ResetAsync("default", Ct);
        var refused = await Assert.ThrowsAsync<PageAllocApiException<ProblemDetails>>(
            async () =>
            {
                while (true)
                {
                    await api.AllocPagesAsync("default", "DMA", new AllocPagesRequest { Order = 10, Gfp = "GFP_DMA" }, Ct);
                }
            });

        Assert.Equal(507, refused.StatusCode);
        var entries = recorder.Entries.ToList();
        var boot = Assert.Single(entries, e => e.Message.StartsWith("Booted machine default", StringComparison.Ordinal));
        Assert.Equal(LogLevel.Information, boot.Level);
        Assert.Contains("Normal pfn 0x100000+1048576 (min/low/high", boot.Message, StringComparison.Ordinal);
        Assert.Contains(boot.Values, v => v.Key == "Cpus" && Equals(v.Value, 4));
        Assert.Single(entries, e => e.Message.StartsWith("Reset: rebooted machine default", StringComparison.Ordinal));
        var failure = Assert.Single(entries, e => e.Message.StartsWith("alloc_pages failed on machine default", StringComparison.Ordinal));
        Assert.Equal(LogLevel.Debug, failure.Level);
        Assert.Contains(failure.Values, v => v.Key == "Kind" && Equals(v.Value, "out-of-memory"));
        Assert.Contains(failure.Values, v => v.Key == "Gfp" && Equals(v.Value, "GFP_DMA"));
    }
}
