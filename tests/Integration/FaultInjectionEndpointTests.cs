using System.Net;
using System.Net.Http.Json;

namespace PageAlloc.Tests.Integration;

/// <summary>/sys/kernel/debug/fail_page_alloc over HTTP: its files, writes checked as a whole, 507 injected-failure.</summary>
public class FaultInjectionEndpointTests(SharedPageAllocApp shared) : IClassFixture<SharedPageAllocApp>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private const string Path = "/sys/kernel/debug/fail_page_alloc";

    [Fact]
    public async Task TheFiles_ReadAsTheKernelPrintsThem_AndAWriteChangesThem()
    {
        await using var app = new PageAllocApp();
        var client = app.CreateClient();
        Assert.Equal("1\n", await client.GetStringAsync($"{Path}/min-order", Ct));
        Assert.Equal("Y\n", await client.GetStringAsync($"{Path}/ignore-gfp-wait", Ct));

        var response = await client.PatchAsJsonAsync(Path, new { probability = 25, times = -1, ignoreGfpWait = false }, Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("25\n", await client.GetStringAsync($"{Path}/probability", Ct));
        Assert.Equal("-1\n", await client.GetStringAsync($"{Path}/times", Ct));
        Assert.Equal("N\n", await client.GetStringAsync($"{Path}/ignore-gfp-wait", Ct));
        Assert.Equal(HttpStatusCode.NotFound, (await client.GetAsync($"{Path}/fail-nth", Ct)).StatusCode);
    }

    [Fact]
    public async Task AnInjectedFailure_Is507InjectedFailure_CountedApart_AndAResetTurnsInjectionOff()
    {
        await using var app = new PageAllocApp();
        var client = app.CreateClient();
        await client.PatchAsJsonAsync(Path, new { probability = 100, times = 1, minOrder = 0, ignoreGfpWait = false }, Ct);
        var before = await client.StatsWithoutLocks();

        var failed = await client.PostAsJsonAsync("/zones/Normal/alloc_pages", new { order = 0 }, Ct);

        Assert.Equal((HttpStatusCode)507, failed.StatusCode);
        Assert.Contains("\"kind\":\"injected-failure\"", await failed.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
        Assert.Equal(before, await client.StatsWithoutLocks());
        Assert.Equal(1, (long)(await client.GetJson(Path))["injected"]!);
        await client.PostOk("/zones/Normal/alloc_pages", new { order = 0 }, 201); // times was 1

        await client.PostOk("/reset", new { });

        Assert.Equal(0, (int)(await client.GetJson(Path))["probability"]!);
    }

    [Theory]
    [InlineData("""{"probability":101}""")]
    [InlineData("""{"probability":50,"verbose":3}""")]
    [InlineData("""{"times":-2}""")]
    [InlineData("""{"minOrder":11}""")]
    [InlineData("""{"interval":0}""")]
    [InlineData("""{"probability":"lots"}""")]
    public async Task ABadValue_Is400_AndChangesNothing(string body)
    {
        var app = shared.App; // a refusal: see SharedPageAllocApp
        var client = app.CreateClient();
        var before = (await client.GetJson(Path)).ToJsonString();

        var response = await client.PatchAsync(Path, new StringContent(body, System.Text.Encoding.UTF8, "application/json"), Ct);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal(before, (await client.GetJson(Path)).ToJsonString());
    }
}
