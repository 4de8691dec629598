using System.Text.RegularExpressions;

namespace PageAlloc.Tests.Integration;

/// <summary>docker-compose.yml as an operator starts it without reading every line.</summary>
public partial class ComposeTests
{
    /// <summary>
    /// The compose file starts the service with API keys whose defaults are in the file itself: every
    /// port it publishes is on 127.0.0.1 unless PAGEALLOC_BIND says otherwise, so a default key is
    /// never reachable from another machine.
    /// </summary>
    [Fact]
    public void EveryPublishedPort_IsOnLoopback_UnlessTheOperatorBindsItElsewhere()
    {
        var compose = File.ReadAllText(Repository.File("docker-compose.yml"));
        var ports = PublishedPort().Matches(compose).SelectMany(m => m.Groups["port"].Captures.Select(c => c.Value)).ToList();

        Assert.NotEmpty(ports);
        Assert.All(ports, port => Assert.StartsWith("${PAGEALLOC_BIND:-127.0.0.1}:", port, StringComparison.Ordinal));
    }

    /// <summary>The entries of every ports: list.</summary>
    [GeneratedRegex(@"^\s+ports:\s*\n(?:\s+-\s*""?(?<port>[^""\n]+)""?\s*\n)+", RegexOptions.Multiline)]
    private static partial Regex PublishedPort();
}
