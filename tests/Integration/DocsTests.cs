using PageAlloc.Api.Infrastructure;

namespace PageAlloc.Tests.Integration;

/// <summary>The documents a newcomer reads say what the code does.</summary>
public class DocsTests
{
    private static string RepositoryFile(string relative)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Service.sln")))
            {
                return Path.Combine(dir.FullName, relative);
            }
        }
        throw new FileNotFoundException("Service.sln not found above " + AppContext.BaseDirectory);
    }

    [Fact]
    public void HttpApiDoc_ListsEveryProblemKind_WithItsStatus()
    {
        var doc = File.ReadAllText(RepositoryFile("docs/http-api.md"));

        Assert.All(ProblemCatalog.All, k => Assert.Contains($"| `{k.Kind}` | {k.Status} |", doc, StringComparison.Ordinal));
    }

    [Fact]
    public void Readme_IsAFrontPage_UnderEightKilobytes_WithNoLinkLeavingTheRepository()
    {
        var readme = File.ReadAllText(RepositoryFile("README.md"));

        Assert.True(readme.Length < 8 * 1024, $"README.md is {readme.Length} bytes");
        foreach (System.Text.RegularExpressions.Match link in System.Text.RegularExpressions.Regex.Matches(readme, @"\]\(([^)]+)\)"))
        {
            var target = link.Groups[1].Value;
            Assert.False(target.Contains("://", StringComparison.Ordinal) || target.StartsWith("..", StringComparison.Ordinal), $"README links out: {target}");
            Assert.True(File.Exists(RepositoryFile(target.Split('#')[0])), $"README links to a missing file: {target}");
        }
    }
}
