using System.IO.Compression;
using System.Reflection;

namespace PageAlloc.Domain.Experiments;

/// <summary>
/// The kernel traces the service holds for experiments to replay: the repository's fixtures
/// (tests/Fixtures/traces, where each is described), built into this assembly so that a published
/// service or a container has them too. Read once, on first use, and kept as lines.
/// </summary>
public static class KnownTraces
{
    private const string Prefix = "PageAlloc.Traces.";

    /// <summary>"git-clone-tar": a real x86-64 machine (Linux 6.18) cloning a git repository and tarring it, 4,196 kmem events.</summary>
    public const string GitCloneTar = "git-clone-tar";

    private static readonly Dictionary<string, Lazy<string[]>> Traces = typeof(KnownTraces).Assembly.GetManifestResourceNames()
        .Where(n => n.StartsWith(Prefix, StringComparison.Ordinal) && n.EndsWith(".perf-script.txt.gz", StringComparison.Ordinal))
        .ToDictionary(n => n[Prefix.Length..^".perf-script.txt.gz".Length], n => new Lazy<string[]>(() => Load(n)), StringComparer.Ordinal);

    public static IReadOnlyCollection<string> Names => Traces.Keys;

    public static bool Exists(string name) => Traces.ContainsKey(name);

    /// <summary>The trace's lines, as perf script printed them.</summary>
    public static IReadOnlyList<string> Lines(string name) => Traces[name].Value;

    private static string[] Load(string resource)
    {
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream(resource)!;
        using var text = new StreamReader(new GZipStream(stream, CompressionMode.Decompress));
        var lines = new List<string>();
        while (text.ReadLine() is { } line)
        {
            lines.Add(line);
        }
        return [.. lines];
    }
}
