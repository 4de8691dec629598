using System.Net;

namespace PageAlloc.Tests.Integration;

/// <summary>POST /vmstat_update: simulated time passes, and pcp high decays back to high_min.</summary>
public class VmstatUpdateEndpointTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Intervals_DecayAGrownPcpHigh_BackToHighMin()
    {
        await using var app = new PageAllocApp();
        var client = app.CreateClient();
        var pfns = new List<long>();
        for (var i = 0; i < 300; i++)
        {
            pfns.Add((long)(await client.PostOk("/zones/Normal/alloc_pages", new { order = 0, cpu = 0 }, 201))["pfn"]!);
        }
        foreach (var pfn in pfns)
        {
            await client.PostOk("/zones/Normal/free_pages", new { pfn, order = 0, cpu = 0 });
        }
        var grown = (await client.GetJson("/zones/Normal"))["pcp"]![0]!;
        Assert.True((int)grown["high"]! > (int)grown["highMin"]!);

        var update = await client.PostOk("/vmstat_update?intervals=100", new { });

        Assert.Equal(100, (int)update["intervals"]!);
        var decayed = (await client.GetJson("/zones/Normal"))["pcp"]![0]!;
        Assert.Equal((int)decayed["highMin"]!, (int)decayed["high"]!);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(3601)]
    public async Task IntervalsOutOfRange_Are400(int intervals)
    {
        await using var app = new PageAllocApp();
        var response = await app.CreateClient().PostAsync($"/vmstat_update?intervals={intervals}", null, Ct);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
    }
}
