using PageAlloc.Api.Infrastructure;

namespace PageAlloc.Tests.Integration;

/// <summary>The documents a newcomer reads say what the code does.</summary>
public class DocsTests
{
    [Fact]
    public void HttpApiDoc_ListsEveryProblemKind_WithItsStatus()
    {
        var doc = File.ReadAllText(Repository.File("docs/http-api.md"));

        Assert.All(ProblemCatalog.All, k => Assert.Contains($"| `{k.Kind}` | {k.Status} |", doc, StringComparison.Ordinal));
    }

    [Fact]
    public void Readme_IsAFrontPage_UnderEightKilobytes_WithNoLinkLeavingTheRepository()
    {
        var readme = File.ReadAllText(Repository.File("README.md"));

        Assert.True(readme.Length < 8 * 1024, $"README.md is {readme.Length} bytes");
        foreach (System.Text.RegularExpressions.Match link in System.Text.RegularExpressions.Regex.Matches(readme, @"\]\(([^)]+)\)"))
        {
            var target = link.Groups[1].Value;
            Assert.False(target.Contains("://", StringComparison.Ordinal) || target.StartsWith("..", StringComparison.Ordinal), $"README links out: {target}");
            Assert.True(File.Exists(Repository.File(target.Split('#')[0])), $"README links to a missing file: {target}");
        }
    }
}
