using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using PageAlloc.Api.Infrastructure;

namespace PageAlloc.Tests.Integration;

/// <summary>
/// A validation problem in the request's own terms: its errors keyed, and its messages worded, with
/// the JSON member names the client sent (order, nrPages, minOrder), never the C# ones (Order, NrPages),
/// whether the page calls' FastValidation or the framework's validation filter (fragment, tests,
/// fail_page_alloc) refused the request; and of the domain's kind (invalid-order for an order out of
/// range) when every member that failed has that kind, of kind validation otherwise.
/// </summary>
public class ValidationProblemTests(SharedPageAllocApp shared) : IClassFixture<SharedPageAllocApp>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public static TheoryData<string, string, string, string, string> Cases() => new()
    {
        // method, path, body, the problem's kind, its errors
        { "POST", "/zones/Normal/alloc_pages", """{"order":11}""", "invalid-order", """{"order":["The field order must be between 0 and 10."]}""" },
        { "POST", "/zones/Normal/alloc_pages", """{"order":-1,"cpu":99}""", "invalid-order", """{"order":["The field order must be between 0 and 10."]}""" },
        { "POST", "/zones/Normal/alloc_pages", """{"order":11,"cpu":-1}""", "validation",
            """{"order":["The field order must be between 0 and 10."],"cpu":["The field cpu must be between 0 and 1023."]}""" },
        { "POST", "/zones/Normal/alloc_pages", """{}""", "validation", """{"order":["The order field is required."]}""" },
        { "POST", "/zones/Normal/free_contig_range", """{"pfn":1048576,"nrPages":0}""", "invalid-length", """{"nrPages":["The field nrPages must be between 1 and 2147483647."]}""" },
        { "POST", "/zones/Normal/free_pages_bulk", """{"pfns":[]}""", "invalid-length", """{"pfns":["The field pfns must be a string or array type with a minimum length of '1'."]}""" },
        { "POST", "/zones/Normal/free_pages", """{"order":0}""", "validation", """{"pfn":["The pfn field is required."]}""" },
        { "POST", "/zones/Normal/drain_pages", """{"cpu":1024}""", "invalid-cpu", """{"cpu":["The field cpu must be between 0 and 1023."]}""" },
        // The framework's own validation filter (endpoints without FastValidation).
        { "POST", "/zones/Normal/fragment", """{"freePages":1,"order":11,"unusableIndex":0.5}""", "invalid-order", """{"order":["The field order must be between 1 and 10."]}""" },
        { "POST", "/zones/Normal/fragment", """{"freePages":-1,"order":9,"unusableIndex":2}""", "validation",
            """{"freePages":["The field freePages must be between 0 and 9.223372036854776E+18."],"unusableIndex":["The field unusableIndex must be between 0 and 1."]}""" },
        { "PATCH", "/sys/kernel/debug/fail_page_alloc", """{"minOrder":11}""", "invalid-order", """{"minOrder":["The field minOrder must be between 0 and 10."]}""" },
        { "PATCH", "/sys/kernel/debug/fail_page_alloc", """{"probability":101}""", "validation", """{"probability":["The field probability must be between 0 and 100."]}""" },
        { "POST", "/tests/page_alloc_high_order", """{"iterations":0}""", "invalid-length", """{"iterations":["The field iterations must be between 1 and 100000."]}""" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task AValidationProblem_NamesTheMembersAsSpelt_AndIsOfTheirDomainKind(string method, string path, string body, string kind, string errors)
    {
        var app = shared.App; // a refusal: see SharedPageAllocApp
        var request = new HttpRequestMessage(new HttpMethod(method), path) { Content = new StringContent(body, Encoding.UTF8, "application/json") };

        var response = await app.CreateClient().SendAsync(request, Ct);

        var text = await response.Content.ReadAsStringAsync(Ct);
        Assert.True((int)response.StatusCode == 400, $"{(int)response.StatusCode}: {text}");
        var problem = JsonNode.Parse(text)!;
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(errors), problem["errors"]), $"errors: {problem["errors"]?.ToJsonString()}");
        Assert.Equal(kind, problem["kind"]?.GetValue<string>());
        Assert.Equal(ProblemCatalog.TypePrefix + kind, problem["type"]?.GetValue<string>());
        if (kind == ProblemCatalog.Validation.Kind)
        {
            Assert.Equal(ProblemCatalog.Validation.Title, problem["title"]?.GetValue<string>());
            Assert.Equal(ProblemCatalog.Validation.When, problem["detail"]?.GetValue<string>());
        }
        else
        {
            // The domain's kind, title and all; its detail is what the errors say.
            Assert.Equal(ProblemCatalog.All.Single(k => k.Kind == kind).Title, problem["title"]?.GetValue<string>());
            Assert.Equal(string.Join(" ", problem["errors"]!.AsObject().SelectMany(e => e.Value!.AsArray().Select(m => m!.GetValue<string>()))),
                problem["detail"]?.GetValue<string>());
        }
    }

    /// <summary>Nested members and elements keep their shape, [JsonPropertyName] wins over the naming policy, and a key that is no member (a query parameter) stays.</summary>
    [Fact]
    public void APath_IsSpeltMemberByMember_AsTheSerializerSpellsIt()
    {
        var errors = new Dictionary<string, string[]>
        {
            ["MinOrder"] = ["The field MinOrder must be between 0 and 10."],
            ["Items[3].NrPages"] = ["The field NrPages must be between 1 and 2147483647."],
            ["Pfns[2]"] = ["pfn 2 of Pfns is bad."],
            ["cells"] = ["The field cells must be between 1 and 65536."],
        };

        var failures = ValidationProblems.InJsonTerms(errors, typeof(Outer), JsonSerializerOptions.Web);

        Assert.Equal(["min-order", "items[3].nrPages", "pfns[2]", "cells"], failures.Select(f => f.Path));
        Assert.Equal(
            ["The field min-order must be between 0 and 10.", "The field nrPages must be between 1 and 2147483647.", "pfn 2 of pfns is bad.", "The field cells must be between 1 and 65536."],
            failures.Select(f => Assert.Single(f.Messages)));
    }

    private sealed record Outer([property: JsonPropertyName("min-order")] int? MinOrder, IReadOnlyList<Inner>? Items, long[]? Pfns);

    private sealed record Inner(int? NrPages);
}
