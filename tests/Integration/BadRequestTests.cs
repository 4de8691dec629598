using System.Net;
using System.Text;

namespace PageAlloc.Tests.Integration;

/// <summary>A table of bad requests: each is a 4xx problem of its kind, and the stats stay byte-identical.</summary>
public class BadRequestTests(SharedPageAllocApp shared) : IClassFixture<SharedPageAllocApp>
{
    public static TheoryData<string, string, int, string, string> Cases() => new()
    {
        // path, body, status, the problem's kind, a word the problem must contain
        { "/zones/Normal/alloc_pages", "{", 400, "malformed-request", "" },
        { "/zones/Normal/alloc_pages", "", 400, "malformed-request", "" },
        { "/zones/Normal/alloc_pages", "not json", 400, "malformed-request", "" },
        { "/zones/Normal/alloc_pages", """{"order":"nine"}""", 400, "malformed-request", "" },
        { "/zones/Normal/alloc_pages", """{"order":9.5}""", 400, "malformed-request", "" },
        { "/zones/Normal/alloc_pages", """{"order":99999999999999}""", 400, "malformed-request", "" },
        { "/zones/Normal/alloc_pages", """{"order":11}""", 400, "invalid-order", "\"order\":[\"The field order must be between 0 and 10.\"]" },
        { "/zones/Normal/alloc_pages", """{"order":-1}""", 400, "invalid-order", "\"order\":[\"The field order must be between 0 and 10.\"]" },
        { "/zones/Normal/alloc_pages", """{}""", 400, "validation", "\"order\":[\"The order field is required.\"]" },
        { "/zones/Normal/alloc_pages", """{"order":0,"gfp":"GFP_KERNAL"}""", 400, "invalid-gfp", "GFP_KERNAL" },
        { "/zones/Normal/alloc_pages", """{"order":0,"gfp":""}""", 400, "invalid-gfp", "invalid-gfp" },
        { "/zones/Normal/alloc_pages", """{"order":0,"gfp":"GFP_DMA|GFP_DMA32"}""", 400, "invalid-gfp", "GFP_ZONE_BAD" },
        { "/zones/Normal/alloc_pages", """{"order":0,"cpu":4}""", 400, "invalid-cpu", "cpu 4" },
        { "/zones/Normal/alloc_pages", """{"order":0,"cpu":-3}""", 400, "invalid-cpu", "\"cpu\":[\"The field cpu must be between 0 and 1023.\"]" },
        { "/zones/Normal/split_page", """{"pfn":1048576,"order":9}""", 409, "page-free", "is free" },
        { "/zones/Normal/split_page", """{"pfn":1048577,"order":9}""", 400, "misaligned", "aligned" },
        { "/zones/Normal/split_page", """{"pfn":5,"order":0}""", 400, "out-of-zone", "not inside zone Normal" },
        { "/zones/Normal/free_pages", """{"pfn":1048576,"order":0}""", 409, "page-free", "is free" },
        { "/zones/Normal/free_pages", """{"pfn":-1,"order":0}""", 400, "out-of-zone", "\"pfn\":[\"The field pfn must be between 0 and" },
        { "/zones/Normal/free_pages", """{"pfn":9223372036854775807,"order":10}""", 400, "misaligned", "" },
        { "/zones/Normal/free_pages", """{"order":0}""", 400, "validation", "\"pfn\":[\"The pfn field is required.\"]" },
        { "/zones/Normal/free_contig_range", """{"pfn":1048576,"nrPages":512}""", 409, "page-free", "is free" },
        { "/zones/Normal/free_contig_range", """{"pfn":1048576,"nrPages":0}""", 400, "invalid-length", "\"nrPages\":[\"The field nrPages must be between 1 and 2147483647.\"]" },
        { "/zones/Normal/free_contig_range", """{"pfn":2097000,"nrPages":1000}""", 400, "out-of-zone", "not inside" },
        { "/zones/Normal/free_contig_range", """{"pfn":1048576,"nrPages":1,"strategy":"fastest"}""", 400, "malformed-request", "" },
        { "/zones/Normal/free_pages_bulk", """{"pfns":[]}""", 400, "invalid-length", "\"pfns\":[\"The field pfns must be a string or array type" },
        { "/zones/Normal/free_pages_bulk", """{"pfns":[1048576,1048576]}""", 409, "page-free", "" },
        { "/zones/Normal/get_page", """{"pfn":1048576}""", 409, "page-free", "is free" },
        { "/zones/Normal/put_page", """{"pfn":1048600}""", 409, "page-free", "inside an order-10 buddy block at 0x100000" },
        { "/zones/Normal/hwpoison", """{"pfn":1048576}""", 409, "page-free", "" },
        { "/zones/Normal/drain_pages", """{"cpu":99}""", 400, "invalid-cpu", "cpu 99" },
        { "/zones/Normal/alloc_contig_range", """{"pfn":1048576,"nrPages":512,"gfp":"GFP_KERNEL|__GFP_COMP"}""", 400, "invalid-gfp", "invalid-gfp" },
        { "/zones/Normal/alloc_contig_range", """{"pfn":1048576,"nrPages":0}""", 400, "invalid-length", "\"nrPages\":[" },
        { "/zones/Normal/alloc_contig_range", """{"pfn":5,"nrPages":512}""", 400, "out-of-zone", "out-of-zone" },
        { "/zones/Normal/alloc_contig_pages", """{"nrPages":99999999999}""", 400, "invalid-length", "\"nrPages\":[" },
        { "/zones/Normal/alloc_contig_pages", """{"nrPages":512,"gfp":"GFP_KERNAL"}""", 400, "invalid-gfp", "invalid-gfp" },
        // A validation problem whose every failing member has a domain kind is of that kind; of mixed or other members, validation.
        { "/zones/Normal/alloc_pages", """{"order":-1,"cpu":99}""", 400, "invalid-order", "\"order\":[" },
        { "/zones/Normal/alloc_pages", """{"order":11,"cpu":-1}""", 400, "validation", "\"cpu\":[" },
        { "/zones/Normal/split_page", """{"pfn":1048576,"order":9,"cpu":-1}""", 400, "invalid-cpu", "\"cpu\":[" },
        { "/zones/Normal/free_pages", """{"pfn":-1,"order":11}""", 400, "validation", "\"pfn\":[" },
        { "/zones/Normal/free_contig_range", """{"pfn":1048576,"nrPages":99999999999}""", 400, "invalid-length", "\"nrPages\":[" },
        { "/zones/Normal/free_pages_bulk", """{"pfns":[1048576],"cpu":-1}""", 400, "invalid-cpu", "\"cpu\":[" },
        { "/zones/Normal/get_page", """{"pfn":1048576,"cpu":1024}""", 400, "invalid-cpu", "\"cpu\":[" },
        { "/zones/Normal/put_page", """{"pfn":-5}""", 400, "out-of-zone", "\"pfn\":[" },
        { "/zones/Normal/hwpoison", """{"pfn":1048576,"cpu":-1}""", 400, "invalid-cpu", "\"cpu\":[" },
        { "/zones/Normal/alloc_contig_range", """{"pfn":-1,"nrPages":512}""", 400, "out-of-zone", "\"pfn\":[" },
        { "/zones/Normal/fragment", """{"freePages":1,"order":11,"unusableIndex":0.5}""", 400, "invalid-order", "\"order\":[" },
        { "/zones/Normal/fragment", """{"freePages":1,"order":0,"unusableIndex":0.5}""", 400, "invalid-order", "\"order\":[" },
        { "/zones/Normal/fragment", """{"freePages":-1,"order":9,"unusableIndex":0.5}""", 400, "validation", "\"freePages\":[" },
        { "/tests/page_alloc_high_order", """{"iterations":0}""", 400, "invalid-length", "\"iterations\":[" },
        { "/tests/page_alloc_high_order", """{"iterations":1,"order":11}""", 400, "invalid-order", "\"order\":[" },
        { "/tests/page_alloc_high_order", """{"iterations":1,"rounds":10}""", 400, "invalid-length", "\"rounds\":[" },
        { "/tests/page_alloc_high_order", """{"iterations":0,"order":11}""", 400, "validation", "\"iterations\":[" },
        // Strict input: only what the OpenAPI document describes.
        { "/zones/Normal/alloc_pages", """{"order":0,"colour":"red"}""", 400, "malformed-request", "'colour' at $.colour is not a member" },
        { "/zones/Normal/alloc_pages", """{"Order":0}""", 400, "malformed-request", "'Order'" },
        { "/zones/Normal/alloc_pages", """{"order":"0"}""", 400, "malformed-request", "at $.order is not an integer" },
        { "/zones/Normal/free_pages", """{"pfn":"1048576","order":0}""", 400, "malformed-request", "$.pfn" },
        { "/zones/Normal/free_contig_range", """{"pfn":1048576,"nrPages":1,"strategy":"PerPage"}""", 400, "malformed-request", "must be one of per-page, chunked, upstream" },
        { "/zones/Normal/free_contig_range", """{"pfn":1048576,"nrPages":1,"strategy":"perpage"}""", 400, "malformed-request", "must be one of" },
        { "/zones/Normal/free_contig_range", """{"pfn":1048576,"nrPages":1,"strategy":0}""", 400, "malformed-request", "must be one of" },
        { "/zones/Normal/free_pages_bulk", """{"pfns":[1048576],"strategy":"CHUNKED"}""", 400, "malformed-request", "must be one of" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task BadRequest_IsAProblem_AndChangesNothing(string path, string body, int status, string kind, string mentions)
    {
        var app = shared.App; // a refusal: see SharedPageAllocApp
        var client = app.CreateClient();
        var before = await client.StatsWithoutLocks();

        var response = await client.PostAsync(path, new StringContent(body, Encoding.UTF8, "application/json"), TestContext.Current.CancellationToken);

        var text = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
        Assert.True(status == (int)response.StatusCode, $"{(int)response.StatusCode}: {text}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = System.Text.Json.Nodes.JsonNode.Parse(text)!;
        Assert.True(kind == problem["kind"]?.GetValue<string>(), $"kind {problem["kind"]}, not {kind}: {text}");
        Assert.Equal("urn:pagealloc:problem:" + kind, problem["type"]?.GetValue<string>());
        Assert.Contains(mentions, text, StringComparison.Ordinal);
        Assert.DoesNotContain("PageAlloc.", text, StringComparison.Ordinal); // no internal type names
        Assert.DoesNotContain("System.", text, StringComparison.Ordinal);
        Assert.Equal(before, await client.StatsWithoutLocks());
    }

    [Theory]
    [InlineData("/zones/Normal/pages/banana")]
    [InlineData("/zones/Normal/pages/-4")]
    [InlineData("/zones/Normal/pages/0xZZ")]
    [InlineData("/zones/Normal/pages/99999999999999999999999")]
    [InlineData("/zones/Normal/pages/12")]
    public async Task GetPageState_BadPfn_Is400(string path)
    {
        var app = shared.App; // a refusal: see SharedPageAllocApp
        var response = await app.CreateClient().GetAsync(path, TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
    }

    [Theory]
    [InlineData("GET", "/no/such/route", "", 404, "not-found")]
    [InlineData("DELETE", "/zones/Normal/alloc_pages", "", 405, "method-not-allowed")]
    [InlineData("POST", "/zones/Normal/alloc_pages", "{}", 400, "validation")]
    [InlineData("POST", "/zones/Normal/alloc_pages", "{", 400, "malformed-request")]
    [InlineData("POST", "/zones/Nowhere/alloc_pages", """{"order":0}""", 404, "unknown-zone")]
    [InlineData("POST", "/zones/Normal/split_page", """{"pfn":1048576,"order":9}""", 409, "page-free")]
    public async Task EveryProblem_CarriesItsKind_InTypeAndKind(string method, string path, string body, int status, string kind)
    {
        var app = shared.App; // a refusal: see SharedPageAllocApp
        var request = new HttpRequestMessage(new HttpMethod(method), path);
        if (body.Length > 0)
        {
            request.Content = new StringContent(body, Encoding.UTF8, "application/json");
        }

        var response = await app.CreateClient().SendAsync(request, TestContext.Current.CancellationToken);

        Assert.Equal(status, (int)response.StatusCode);
        var problem = System.Text.Json.Nodes.JsonNode.Parse(await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken))!;
        Assert.Equal(kind, problem["kind"]!.GetValue<string>());
        Assert.Equal("urn:pagealloc:problem:" + kind, problem["type"]!.GetValue<string>());
        Assert.False(string.IsNullOrEmpty(problem["detail"]?.GetValue<string>()));
    }
}

/// <summary>Only JSON (or no body) may change state: a cross-site form post cannot.</summary>
public class MediaTypeTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData("/reset", "application/x-www-form-urlencoded", "a=1")]
    [InlineData("/reset", "multipart/form-data; boundary=x", "--x--")]
    [InlineData("/reset", "text/plain", "{}")]
    [InlineData("/zones/Normal/alloc_pages", "text/plain", """{"order":0}""")]
    [InlineData("/zones/Normal/alloc_pages", "application/x-www-form-urlencoded", "order=0")]
    public async Task ACrossSiteStylePost_Is415_AndChangesNothing(string path, string contentType, string body)
    {
        await using var app = new PageAllocApp();
        var client = app.CreateClient();
        await client.PostOk("/zones/Normal/alloc_pages", new { order = 3 }, 201);
        var before = await client.StatsWithoutLocks();
        var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(body, Encoding.UTF8) };
        request.Content.Headers.ContentType = System.Net.Http.Headers.MediaTypeHeaderValue.Parse(contentType);
        request.Headers.Add("Origin", "https://elsewhere.example");

        var response = await client.SendAsync(request, Ct);

        Assert.Equal(HttpStatusCode.UnsupportedMediaType, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal(before, await client.StatsWithoutLocks());
    }

    [Fact]
    public async Task ABodylessPost_StillResets()
    {
        await using var app = new PageAllocApp();
        var response = await app.CreateClient().PostAsync("/reset", null, Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }
}
