using PageAlloc.Client;

namespace PageAlloc.Tests.Integration;

public class ParallelClientsTests
{
    [Fact]
    public async Task ManyClientsAllocatingAndFreeing_EndWithTheStatsAtBoot()
    {
        await using var app = new PageAllocApp();
        var client = app.CreateClient();
        var bootBuddyinfo = await client.GetStringAsync("/proc/buddyinfo", TestContext.Current.CancellationToken);

        var clients = Enumerable.Range(0, 16).Select(async c =>
        {
            var api = app.Api();
            var random = new Random(c);
            for (var i = 0; i < 25; i++)
            {
                var order = random.Next(0, 10);
                var pfn = (await api.AllocPagesAsync("default", "Normal", new AllocPagesRequest { Order = order, Gfp = "GFP_HIGHUSER_MOVABLE", Cpu = c % 4 })).Pfn;
                if (order > 0 && random.Next(2) == 0)
                {
                    await api.SplitPageAsync("default", "Normal", new BlockRequest { Pfn = pfn, Order = order });
                    await api.FreeContigRangeAsync("default", "Normal", null, new FreeContigRangeRequest { Pfn = pfn, NrPages = 1 << order, Strategy = FreeStrategy.Upstream, Cpu = c % 4 });
                }
                else
                {
                    await api.FreePagesAsync("default", "Normal", new BlockRequest { Pfn = pfn, Order = order, Cpu = c % 4 });
                }
            }
        });
        await Task.WhenAll(clients);

        Assert.Equal(0, (await app.Api().GetStatsAsync("default", TestContext.Current.CancellationToken)).Totals.AllocatedPages);
        await client.PostOk("/zones/Normal/drain_pages", new { });
        Assert.Equal(bootBuddyinfo, await client.GetStringAsync("/proc/buddyinfo", TestContext.Current.CancellationToken));
    }
}
