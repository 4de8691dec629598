using System.IO.Compression;
using PageAlloc.TraceReplay;

namespace PageAlloc.Tests.Unit;

/// <summary>tools/TraceReplay's command line, run in-process with its output and errors captured.</summary>
public sealed class TraceReplayToolTests : IDisposable
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("tracereplay-");

    public void Dispose() => _dir.Delete(recursive: true);

    private static async Task<(int Exit, string Output, string Error)> Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var exit = await ReplayCommand.Create().Parse(args).InvokeAsync(new() { Output = output, Error = error }, Ct);
        return (exit, output.ToString(), error.ToString());
    }

    private string File(string name, byte[] bytes)
    {
        var path = Path.Combine(_dir.FullName, name);
        System.IO.File.WriteAllBytes(path, bytes);
        return path;
    }

    private static byte[] Gzip(byte[] bytes)
    {
        using var memory = new MemoryStream();
        using (var gzip = new GZipStream(memory, CompressionLevel.Fastest))
        {
            gzip.Write(bytes);
        }
        return memory.ToArray();
    }

    [Fact]
    public async Task AKmemTrace_IsReplayed_AndExitsZero()
    {
        var (exit, output, error) = await Run(Path.Combine(AppContext.BaseDirectory, "Fixtures", "traces", "git-clone-tar.perf-script.txt.gz"));

        Assert.True(exit == 0, error);
        Assert.Contains("4196 kmem events", output, StringComparison.Ordinal);
    }

    /// <summary>
    /// Replayed from the recorded machine's state (the fixtures' zoneinfo and pagetypeinfo), the
    /// trace needs no migratetype fallback, as the kernel that recorded it needed none; a fresh,
    /// all-Movable machine claims pageblocks for its first unmovable and reclaimable allocations.
    /// </summary>
    [Fact]
    public async Task FromTheRecordedMachinesState_TheTraceFallsBackNoMoreThanTheKernelDid()
    {
        var proc = Path.Combine(AppContext.BaseDirectory, "Fixtures", "proc");
        var recorded = File("recorded.txt", [.. System.IO.File.ReadAllBytes(Path.Combine(proc, "zoneinfo.txt")), .. System.IO.File.ReadAllBytes(Path.Combine(proc, "pagetypeinfo.txt"))]);
        var trace = Path.Combine(AppContext.BaseDirectory, "Fixtures", "traces", "git-clone-tar.perf-script.txt.gz");

        var (exit, output, error) = await Run(trace, "--import", recorded);
        var (_, fresh, _) = await Run(trace, "--zoneinfo", Path.Combine(proc, "zoneinfo.txt"));

        Assert.True(exit == 0, error);
        Assert.Matches(@"migratetype fallbacks +0 +0 \(claim 0, steal 0\)", output);
        Assert.Matches(@"migratetype fallbacks +0 +[1-9]", fresh);
        Assert.Contains("zone Normal at the end: buddyinfo 20788 ", output, StringComparison.Ordinal); // the recorded free lists, less what the trace kept
        Assert.Contains("--import: zone DMA32 stays as booted", error, StringComparison.Ordinal); // its pagetypeinfo counts pageblocks its managed pages do not span
    }

    public static TheoryData<string, byte[], string> NotTraces => new()
    {
        { "README.md", "# A README\n\nSome text, no kmem event in it.\n"u8.ToArray(), "None of README.md's 3 lines is a kmem event" },
        { "empty.txt", [], "There is no line in empty.txt" },
        { "garbage.gz", Gzip([.. Enumerable.Range(0, 4096).Select(i => (byte)(i * 7919 % 251))]), "is a kmem event" },
        { "bad.gz", [0x1f, 0x8b, .. Enumerable.Range(0, 100).Select(i => (byte)(i * 31 % 256))], "Bad gzip in bad.gz" },
    };

    /// <summary>As POST /replay answers not-a-trace: one line on stderr saying why, nothing on stdout, exit 3.</summary>
    [Theory]
    [MemberData(nameof(NotTraces))]
    public async Task WhatIsNotAKmemTrace_IsRefused_OnOneLine_WithExitCode3(string name, byte[] bytes, string says)
    {
        var path = File(name, bytes);

        foreach (var args in new[] { new[] { path }, [path, "--json"] })
        {
            var (exit, output, error) = await Run(args);

            Assert.Equal(3, exit);
            Assert.Equal("", output);
            Assert.Contains(says, error, StringComparison.Ordinal);
            Assert.Single(error.TrimEnd('\n').Split('\n'));
            Assert.DoesNotContain("   at ", error, StringComparison.Ordinal);
            Assert.False(error.TrimEnd('\n').Any(c => char.IsControl(c) && c != '\t'), $"control characters in: {error}");
        }
    }

    [Fact]
    public async Task Help_ListsTheExitCodes()
    {
        var (exit, output, _) = await Run("--help");

        Assert.Equal(0, exit);
        Assert.Contains("Exit codes: 0 replayed, 1 bad command line, 2 an unknown zone or a machine that does not validate, 3 not a kmem trace", output, StringComparison.Ordinal);
    }

    /// <summary>Past --max-line-bytes or --max-bytes (after decompression): one line on stderr naming the bound, exit 4.</summary>
    [Theory]
    [InlineData("--max-line-bytes", "1000", "--max-line-bytes, 1000 bytes")]
    [InlineData("--max-bytes", "100000", "--max-bytes, 100000 bytes")]
    public async Task AFilePastABound_StopsWithExitCode4_NamingIt(string option, string value, string says)
    {
        var lines = string.Concat(Enumerable.Repeat(new string('x', 255) + "\n", 1000)) + new string('x', 5000) + "\n";
        var path = File("big.gz", Gzip(System.Text.Encoding.ASCII.GetBytes(lines)));

        var (exit, output, error) = await Run(path, option, value);

        Assert.Equal(ReplayCommand.TooLargeExit, exit);
        Assert.Equal("", output);
        Assert.Contains(says, Assert.Single(error.Split('\n', StringSplitOptions.RemoveEmptyEntries)), StringComparison.Ordinal);
    }
}
