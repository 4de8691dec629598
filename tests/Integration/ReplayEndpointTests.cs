using System.Net;
using System.Net.Http.Headers;
using PageAlloc.Client;

namespace PageAlloc.Tests.Integration;

/// <summary>POST /replay: a real trace through HTTP, gzipped or not, on a private machine; bad bodies refused.</summary>
public class ReplayEndpointTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static string TracePath => Path.Combine(AppContext.BaseDirectory, "Fixtures", "traces", "git-clone-tar.perf-script.txt.gz");

    private static async Task<HttpResponseMessage> Post(PageAllocApp app, byte[] body, string contentType, string query = "")
    {
        var content = new ByteArrayContent(body);
        content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        return await app.CreateClient().PostAsync("/replay" + query, content, Ct);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task TheRealTrace_Replays_GzippedOrNot_AndLeavesTheServedMachineAlone(bool gzipped)
    {
        await using var app = new PageAllocApp();
        var gz = await File.ReadAllBytesAsync(TracePath, Ct);
        var body = gzipped ? gz : await Gunzip(gz);
        var before = await app.CreateClient().StatsWithoutLocks();

        var response = await Post(app, body, gzipped ? "application/gzip" : "application/octet-stream", "?timelineEvery=2000");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var result = System.Text.Json.Nodes.JsonNode.Parse(await response.Content.ReadAsStringAsync(Ct))!;
        Assert.Equal(4196, (long)result["events"]!);
        Assert.Equal(3, result["timeline"]!.AsArray().Count); // at 2000, 4000, and the end
        Assert.Equal("Normal", (string)result["zone"]!);
        Assert.Equal(before, await app.CreateClient().StatsWithoutLocks());
    }

    [Theory]
    [InlineData("hello\nworld\n", "application/octet-stream", "not-a-trace")]
    [InlineData("not gzip at all", "application/gzip", "not-a-trace")]
    public async Task ABodyThatIsNotATrace_Is400(string body, string contentType, string kind)
    {
        await using var app = new PageAllocApp();

        var response = await Post(app, System.Text.Encoding.UTF8.GetBytes(body), contentType);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains(kind, await response.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
    }

    [Fact]
    public async Task AsTextPlain_ItIsRefusedLikeAnyCrossSiteFormPost()
    {
        await using var app = new PageAllocApp();
        var line = "            perf 1 [000]  1.000000:             kmem:mm_page_alloc: page=0x1 pfn=0x1 order=0 migratetype=0 gfp_flags=GFP_KERNEL\n";

        var response = await Post(app, System.Text.Encoding.UTF8.GetBytes(line), "text/plain");

        Assert.Equal(HttpStatusCode.UnsupportedMediaType, response.StatusCode);
    }

    [Fact]
    public async Task AnUnknownZone_Is404()
    {
        await using var app = new PageAllocApp();

        var response = await Post(app, await File.ReadAllBytesAsync(TracePath, Ct), "application/gzip", "?zone=Highmem");

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
    }

    private static async Task<byte[]> Gunzip(byte[] gz)
    {
        await using var input = new System.IO.Compression.GZipStream(new MemoryStream(gz), System.IO.Compression.CompressionMode.Decompress);
        using var output = new MemoryStream();
        await input.CopyToAsync(output, Ct);
        return output.ToArray();
    }
}
