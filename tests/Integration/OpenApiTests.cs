using System.Text.Json.Nodes;
using Microsoft.AspNetCore.WebUtilities;
using PageAlloc.Api.Infrastructure;

namespace PageAlloc.Tests.Integration;

public class OpenApiTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>The document a host serves (a copy each time): served once per run, since every host of one build serves the same.</summary>
    private static async Task<JsonNode> Served() => (await ServedOnce.Value).DeepClone();

    private static readonly Lazy<Task<JsonNode>> ServedOnce = new(async () =>
    {
        await using var app = new PageAllocApp();
        return JsonNode.Parse(await app.CreateClient().GetStringAsync("/swagger/v1/swagger.json", CancellationToken.None))!;
    });

    [Fact]
    public async Task CommittedDocument_IsTheServedDocument()
    {
        var committed = JsonNode.Parse(await File.ReadAllTextAsync(CommittedOpenApi.Path(), Ct))!;
        Assert.True(JsonNode.DeepEquals(committed, await Served()),
            "src/Api/openapi/openapi.json is stale: build src/Api and commit the regenerated file.");
    }

    [Theory]
    [InlineData("/machines", "post", "201 400 409 507")]
    [InlineData("/machines", "get", "200")]
    [InlineData("/machines/{machine}", "get", "200 404")]
    [InlineData("/machines/{machine}", "delete", "204 404 409")]
    [InlineData("/machines/{machine}/zones", "get", "200 404")]
    [InlineData("/machines/{machine}/zones/{zone}", "get", "200 404")]
    [InlineData("/machines/{machine}/zones/{zone}/alloc_pages", "post", "201 400 404 507")]
    [InlineData("/machines/{machine}/zones/{zone}/split_page", "post", "200 400 404 409")]
    [InlineData("/machines/{machine}/zones/{zone}/free_contig_range", "post", "200 400 404 409")]
    [InlineData("/machines/{machine}/zones/{zone}/free_pages", "post", "200 400 404 409")]
    [InlineData("/machines/{machine}/zones/{zone}/free_pages_bulk", "post", "200 400 404 409")]
    [InlineData("/machines/{machine}/zones/{zone}/get_page", "post", "200 400 404 409")]
    [InlineData("/machines/{machine}/zones/{zone}/put_page", "post", "200 400 404 409")]
    [InlineData("/machines/{machine}/zones/{zone}/hwpoison", "post", "200 400 404 409")]
    [InlineData("/machines/{machine}/zones/{zone}/pages/{pfn}", "get", "200 400 404")]
    [InlineData("/machines/{machine}/zones/{zone}/drain_pages", "post", "200 400 404")]
    [InlineData("/machines/{machine}/zones/{zone}/stats", "get", "200 404")]
    [InlineData("/machines/{machine}/stats", "get", "200 404")]
    [InlineData("/machines/{machine}/reset", "post", "200 404")]
    [InlineData("/machines/{machine}/proc/buddyinfo", "get", "200 404")]
    [InlineData("/machines/{machine}/proc/pagetypeinfo", "get", "200 404")]
    [InlineData("/machines/{machine}/proc/zoneinfo", "get", "200 404")]
    [InlineData("/machines/{machine}/proc/vmstat", "get", "200 404")]
    [InlineData("/machines/{machine}/tests/page_alloc_high_order", "post", "200 400 429")]
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
    public async Task EveryOperation_IsDescribed_AndEveryResponseSaysWhatItMeans()
    {
        var reasonPhrases = Enumerable.Range(100, 500).Select(s => ReasonPhrases.GetReasonPhrase(s)).Where(p => p.Length > 0).ToHashSet();
        var document = await Served();
        var tags = document["tags"]!.AsArray().Select(t => t!["name"]!.GetValue<string>()).ToHashSet();
        foreach (var (path, operations) in document["paths"]!.AsObject())
        {
            foreach (var (method, operation) in operations!.AsObject())
            {
                Assert.True(operation!["description"]?.GetValue<string>().Length > 40, $"{method} {path} has no description");
                Assert.All(operation["tags"]!.AsArray(), t => Assert.True(tags.Contains(t!.GetValue<string>()), $"{method} {path}'s tag {t} is not among the document's tags (DocumentShapeFilter.Tags)"));
                foreach (var (status, response) in operation["responses"]!.AsObject())
                {
                    var description = response!["description"]!.GetValue<string>();
                    Assert.DoesNotContain(description, reasonPhrases);
                    if (status[0] is '4' or '5')
                    {
                        Assert.NotEmpty(response["content"]!["application/problem+json"]!["examples"]!.AsObject());
                    }
                }
            }
        }
    }

    [Fact]
    public async Task ProblemSchema_ListsEveryKindAndItsType_AndRequiresThem()
    {
        var problem = (await Served())["components"]!["schemas"]!["ProblemDetails"]!;
        Assert.Equal(ProblemCatalog.All.Select(k => k.Kind), problem["properties"]!["kind"]!["enum"]!.AsArray().Select(v => v!.GetValue<string>()));
        Assert.Equal(ProblemCatalog.All.Select(k => k.Type), problem["properties"]!["type"]!["enum"]!.AsArray().Select(v => v!.GetValue<string>()));
        Assert.Superset(new HashSet<string> { "type", "title", "status", "detail", "kind" }, problem["required"]!.AsArray().Select(v => v!.GetValue<string>()).ToHashSet());
    }

    /// <summary>The request members whose value out of range is a refusal of the domain's kind (ProblemCatalog's table, written out).</summary>
    public static TheoryData<string, string> MembersWithADomainKind() => new()
    {
        { "order", "invalid-order" },
        { "minOrder", "invalid-order" },
        { "cpu", "invalid-cpu" },
        { "pfn", "out-of-zone" },
        { "nrPages", "invalid-length" },
        { "pfns", "invalid-length" },
        { "iterations", "invalid-length" },
        { "rounds", "invalid-length" },
    };

    /// <summary>
    /// A validation problem about such a member alone is of its domain kind, so every operation whose
    /// body has the member with a bound lists that kind among its 400s.
    /// </summary>
    [Theory]
    [MemberData(nameof(MembersWithADomainKind))]
    public async Task EveryOperationWhoseBodyBoundsAMember_ListsItsDomainKind(string member, string kind)
    {
        var document = await Served();
        var schemas = document["components"]!["schemas"]!;
        var bounded = 0;
        foreach (var (path, operations) in document["paths"]!.AsObject())
        {
            foreach (var (method, operation) in operations!.AsObject())
            {
                var reference = operation!["requestBody"]?["content"]?["application/json"]?["schema"]?["$ref"]?.GetValue<string>();
                var property = reference is null ? null : schemas[reference.Split('/')[^1]]!["properties"]?[member]?.AsObject();
                if (property is null || !property.Any(p => p.Key is "minimum" or "maximum" or "minItems" or "maxItems"))
                {
                    continue;
                }
                bounded++;
                var examples = operation["responses"]?["400"]?["content"]?["application/problem+json"]?["examples"]?.AsObject();
                Assert.True(examples?.ContainsKey(kind) == true, $"{method} {path}: {member} is bounded, but 400 does not list {kind}");
            }
        }
        Assert.True(bounded > 0, $"no operation's body bounds {member}");
    }

    [Theory]
    [InlineData("AllocPagesResponse", "pfn order zone migratetype compound fromPcp gfp")]
    [InlineData("RangeFreeResponse", "freed notFreed leaked chunksByOrder chunksUnlisted strategy")]
    [InlineData("PageState", "pfn refcount flags where blockPfn blockOrder compound pageblockMigrateType")]
    [InlineData("ZoneStatsResponse", "zone node managedPages freePages buddyinfo pagetypeinfo pcp vmstat locks")]
    public async Task ResponseSchemas_RequireTheMembersAlwaysWritten(string schema, string members)
    {
        var required = (await Served())["components"]!["schemas"]![schema]!["required"]!.AsArray().Select(v => v!.GetValue<string>()).ToHashSet();
        Assert.Superset(members.Split(' ').ToHashSet(), required);
    }

    [Fact]
    public async Task ResponseSchemas_LeaveOptionalWhatMayBeAbsentOrNull()
    {
        var schemas = (await Served())["components"]!["schemas"]!;
        Assert.DoesNotContain("chunks", schemas["RangeFreeResponse"]!["required"]!.AsArray().Select(v => v!.GetValue<string>()));
        Assert.DoesNotContain("cpu", schemas["PageState"]!["required"]!.AsArray().Select(v => v!.GetValue<string>()));
    }

    [Fact]
    public async Task Operations_FollowTheSeedFlow_AndPathParametersHaveExamples()
    {
        var document = await Served();
        var paths = document["paths"]!.AsObject().Select(p => p.Key).ToList();
        Assert.Equal(["/machines/{machine}/zones/{zone}/alloc_pages", "/machines/{machine}/zones/{zone}/split_page", "/machines/{machine}/zones/{zone}/free_contig_range"], paths.Take(3));
        var parameters = document["paths"]!["/machines/{machine}/zones/{zone}/alloc_pages"]!["post"]!["parameters"]!.AsArray();
        Assert.Equal(["machine", "zone"], parameters.Select(p => p!["name"]!.GetValue<string>()));
        Assert.Equal("default", parameters[0]!["example"]!.GetValue<string>());
        Assert.Equal("Normal", parameters[1]!["example"]!.GetValue<string>());
    }

    [Fact]
    public async Task Document_SpellsStrategiesAsStrings()
    {
        var schemas = (await Served())["components"]!["schemas"]!;
        var values = schemas["FreeStrategy"]!["enum"]!.AsArray().Select(v => v!.GetValue<string>());
        Assert.Equal(["per-page", "chunked", "upstream"], values);
    }
}

/// <summary>The checker every integration test's client goes through refuses what the document does not describe.</summary>
public class ContractCheckingHandlerTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private sealed class Canned(int status, string mediaType, string body) : HttpMessageHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken) =>
            Task.FromResult(new HttpResponseMessage((System.Net.HttpStatusCode)status)
            {
                Content = new StringContent(body, System.Text.Encoding.UTF8, mediaType),
            });
    }

    private static Task<HttpResponseMessage> Post(int status, string mediaType, string body)
    {
        var client = new HttpClient(new ContractCheckingHandler { InnerHandler = new Canned(status, mediaType, body) }) { BaseAddress = new Uri("http://localhost") };
        return client.PostAsync("/zones/Normal/alloc_pages", null, Ct);
    }

    [Fact]
    public async Task DocumentedAnswer_PassesThrough()
    {
        var response = await Post(201, "application/json", """{"pfn":1,"order":0,"zone":"Normal","migratetype":"movable","compound":false,"fromPcp":true,"gfp":"GFP_KERNEL"}""");
        Assert.Equal(201, (int)response.StatusCode);
    }

    [Theory]
    [InlineData(201, "application/json", """{"order":0,"zone":"Normal","migratetype":"movable","compound":false,"fromPcp":true,"gfp":"GFP_KERNEL"}""", "$.pfn is required")]
    [InlineData(201, "application/json", """{"pfn":1,"order":0,"zone":"Normal","migratetype":"movable","compound":false,"fromPcp":true,"gfp":"GFP_KERNEL","extra":1}""", "$.extra is not in the schema")]
    [InlineData(201, "application/json", """{"pfn":1,"order":0,"zone":"Normal","migratetype":"Movable","compound":false,"fromPcp":true,"gfp":"GFP_KERNEL"}""", "not one of the documented values")]
    [InlineData(409, "application/problem+json", """{"type":"urn:pagealloc:problem:page-free","title":"t","status":409,"detail":"d","kind":"page-free"}""", "does not list")]
    [InlineData(400, "application/problem+json", """{"type":"urn:pagealloc:problem:page-free","title":"t","status":400,"detail":"d","kind":"page-free"}""", "not among the kinds")]
    [InlineData(400, "application/problem+json", """{"type":"urn:pagealloc:problem:invalid-cpu","title":"t","status":400,"detail":"d","kind":"invalid-order"}""", "does not name kind")]
    public async Task UndocumentedAnswer_FailsTheCall(int status, string mediaType, string body, string expected)
    {
        var violation = await Assert.ThrowsAsync<ContractViolation>(() => Post(status, mediaType, body));
        Assert.Contains(expected, violation.Message, StringComparison.Ordinal);
    }
}
