using System.Text.Json.Nodes;

namespace PageAlloc.Tests.Integration;

public class OpenApiTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static async Task<JsonNode> Served()
    {
        await using var app = new PageAllocApp();
        return JsonNode.Parse(await app.CreateClient().GetStringAsync("/swagger/v1/swagger.json", Ct))!;
    }

    /// <summary>src/Api/openapi/openapi.json, found by walking up from the test's output folder.</summary>
    private static string CommittedPath()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "src", "Api", "openapi", "openapi.json");
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }
        throw new FileNotFoundException("src/Api/openapi/openapi.json not found above " + AppContext.BaseDirectory);
    }

    [Fact]
    public async Task CommittedDocument_IsTheServedDocument()
    {
        var committed = JsonNode.Parse(await File.ReadAllTextAsync(CommittedPath(), Ct))!;
        Assert.True(JsonNode.DeepEquals(committed, await Served()),
            "src/Api/openapi/openapi.json is stale: build src/Api and commit the regenerated file.");
    }

    [Theory]
    [InlineData("/zones", "get", "200")]
    [InlineData("/zones/{zone}", "get", "200 404")]
    [InlineData("/zones/{zone}/alloc_pages", "post", "201 400 404 507")]
    [InlineData("/zones/{zone}/split_page", "post", "200 400 404 409")]
    [InlineData("/zones/{zone}/free_contig_range", "post", "200 400 404 409")]
    [InlineData("/zones/{zone}/free_pages", "post", "200 400 404 409")]
    [InlineData("/zones/{zone}/free_pages_bulk", "post", "200 400 404 409")]
    [InlineData("/zones/{zone}/get_page", "post", "200 400 404 409")]
    [InlineData("/zones/{zone}/put_page", "post", "200 400 404 409")]
    [InlineData("/zones/{zone}/hwpoison", "post", "200 400 404 409")]
    [InlineData("/zones/{zone}/pages/{pfn}", "get", "200 400 404")]
    [InlineData("/zones/{zone}/drain_pages", "post", "200 400 404")]
    [InlineData("/zones/{zone}/stats", "get", "200 404")]
    [InlineData("/stats", "get", "200")]
    [InlineData("/reset", "post", "200")]
    [InlineData("/proc/buddyinfo", "get", "200")]
    [InlineData("/proc/pagetypeinfo", "get", "200")]
    [InlineData("/proc/zoneinfo", "get", "200")]
    [InlineData("/proc/vmstat", "get", "200")]
    [InlineData("/tests/page_alloc_high_order", "post", "200 400 429")]
    public async Task Document_ListsEveryRouteWithItsStatusCodes(string path, string method, string statuses)
    {
        var operation = (await Served())["paths"]?[path]?[method];
        Assert.NotNull(operation);
        Assert.False(string.IsNullOrEmpty(operation["operationId"]?.GetValue<string>()));
        Assert.False(string.IsNullOrEmpty(operation["summary"]?.GetValue<string>()));
        var documented = operation["responses"]!.AsObject().Select(r => r.Key).ToHashSet();
        foreach (var status in statuses.Split(' '))
        {
            Assert.Contains(status, documented);
        }
        foreach (var problem in documented.Where(s => s[0] is '4' or '5'))
        {
            Assert.NotNull(operation["responses"]![problem]!["content"]?["application/problem+json"]);
        }
    }

    [Fact]
    public async Task Document_SpellsStrategiesAsStrings()
    {
        var schemas = (await Served())["components"]!["schemas"]!;
        var values = schemas["FreeStrategy"]!["enum"]!.AsArray().Select(v => v!.GetValue<string>());
        Assert.Equal(["per-page", "chunked", "upstream"], values);
    }
}
