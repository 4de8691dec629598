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

    private static readonly Dictionary<string, Lazy<long>> EventCounts = Traces.Keys.ToDictionary(n => n,
        n => new Lazy<long>(() => Lines(n).Count(line => Replay.KmemTraceParser.TryParse(line, out _))), StringComparer.Ordinal);

    /// <summary>The trace's lines that are kmem events, counted once.</summary>
    public static long Events(string name) => EventCounts[name].Value;

    /// <summary>A trace the service holds, as a source a workload reads.</summary>
    public static WorkloadTrace Source(string name) => new(name, Lines(name).Count, () => Lines(name));

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

/// <summary>
/// A trace a workload reads: its name, its line count (for progress) and a way to read its lines
/// from the start, once per pass.
/// </summary>
public sealed record WorkloadTrace(string Name, long LineCount, Func<IEnumerable<string>> Open)
{
    /// <summary>
    /// A trace file (perf script, ftrace or trace-cmd text, gzipped or not), read from disk at each
    /// pass, so memory does not grow with the trace; its lines are counted once here.
    /// </summary>
    public static WorkloadTrace FromFile(string path)
    {
        long lines = 0;
        foreach (var _ in ReadLines(path))
        {
            lines++;
        }
        return new WorkloadTrace(Path.GetFileName(path), lines, () => ReadLines(path));
    }

    /// <summary>
    /// A trace a client uploaded (tools' text or gzip, as given): kept as those bytes and read from
    /// them at each pass, so it costs its compressed size; <paramref name="lineCount"/> is what the
    /// upload counted when it checked the trace.
    /// </summary>
    public static WorkloadTrace FromBytes(string name, byte[] bytes, long lineCount) =>
        new(name, lineCount, () => ReadLines(() => new MemoryStream(bytes, writable: false)));

    private static IEnumerable<string> ReadLines(string path) => ReadLines(() => File.OpenRead(path));

    private static IEnumerable<string> ReadLines(Func<Stream> open)
    {
        using var file = open();
        var start = new byte[2];
        var gzip = file.Read(start) == 2 && start[0] == 0x1f && start[1] == 0x8b;
        file.Position = 0;
        using var text = new StreamReader(gzip ? new GZipStream(file, CompressionMode.Decompress) : file);
        while (text.ReadLine() is { } line)
        {
            yield return line;
        }
    }
}
