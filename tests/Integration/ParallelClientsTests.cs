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
            var http = app.CreateClient();
            var random = new Random(c);
            for (var i = 0; i < 25; i++)
            {
                var order = random.Next(0, 10);
                var block = await http.PostOk("/zones/Normal/alloc_pages", new { order, gfp = "GFP_HIGHUSER_MOVABLE", cpu = c % 4 }, 201);
                var pfn = block["pfn"]!.GetValue<long>();
                if (order > 0 && random.Next(2) == 0)
                {
                    await http.PostOk("/zones/Normal/split_page", new { pfn, order });
                    await http.PostOk("/zones/Normal/free_contig_range", new { pfn, nrPages = 1 << order, strategy = "upstream", cpu = c % 4 });
                }
                else
                {
                    await http.PostOk("/zones/Normal/free_pages", new { pfn, order, cpu = c % 4 });
                }
            }
        });
        await Task.WhenAll(clients);

        var stats = await client.GetJson("/stats");
        Assert.Equal(0, stats["totals"]!["allocatedPages"]!.GetValue<long>());
        await client.PostOk("/zones/Normal/drain_pages", new { });
        Assert.Equal(bootBuddyinfo, await client.GetStringAsync("/proc/buddyinfo", TestContext.Current.CancellationToken));
    }
}
