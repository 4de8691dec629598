using System.IO.Compression;
using System.Text;
using System.Text.Json;
using CsCheck;
using PageAlloc.Domain.Allocator;
using PageAlloc.Domain.Model;
using PageAlloc.Domain.Replay;
using PageAlloc.Tests.Unit.Reference;
using PageAlloc.TraceReplay;

namespace PageAlloc.Tests.Unit;

/// <summary>
/// Issue 27's replay, held to the one it replaced (kept in Reference/: the regex parser, the string
/// per line reader, the replayer as it was): the same lines read as the same events, the same
/// results byte for byte, the same refusals past the bounds.
/// </summary>
public class ReferenceReplayTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    private static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "Fixtures", "traces", name);

    private static readonly Lazy<string[]> FixtureLines = new(() =>
    {
        using var gz = new GZipStream(File.OpenRead(Fixture("git-clone-tar.perf-script.txt.gz")), CompressionMode.Decompress);
        using var reader = new StreamReader(gz);
        return reader.ReadToEnd().Split('\n');
    });

    // The formats of ReplayTests beside the fixture's perf script: ftrace with its flags, trace-cmd, an extfrag line.
    private static readonly string[] OtherFormats =
    [
        "             git-19594   [003] d..2.  3521.562218: mm_page_alloc_zone_locked: page=00000000c2ac6b39 pfn=0x106b5b order=0 migratetype=0 percpu_refill=1",
        "             tar-2001  [000]  8341.002341: mm_page_free_batched: page=0xffffea0004a1b2c0 pfn=0x1286cb order=0",
        "          <idle>-0     [001] ..s1.   100.000001: mm_page_pcpu_drain: page=ffffea0000a8c9c0 pfn=172839 order=0 migratetype=1",
        "            test 1 [000]  1.000000: kmem:mm_page_alloc_extfrag: page=0x9 pfn=0x9 alloc_order=0 fallback_order=10 pageblock_order=9 alloc_migratetype=0 fallback_migratetype=1 fragmenting=0 change_ownership=1",
        "  Web Content 19592 [000]  3521.559551:              kmem:mm_page_free: page=0x1746fa pfn=0x1746fa order=2",
    ];

    private static void AssertSameParse(string line)
    {
        var expected = RegexKmemTraceParser.TryParse(line, out var want);
        var fromString = KmemTraceParser.TryParse(line, out var got);
        var fromSpan = KmemTraceParser.TryParse(line.AsSpan(), new GfpSpellings(), out var gotSpan);
        Assert.True((expected, want) == (fromString, got), $"string: {Quote(line)}: regex {expected} {want}, new {fromString} {got}");
        Assert.True((expected, want) == (fromSpan, gotSpan), $"span: {Quote(line)}: regex {expected} {want}, new {fromSpan} {gotSpan}");
    }

    private static string Quote(string s) => string.Concat(s.Select(c => c is < ' ' or > '~' ? $"\\u{(int)c:x4}" : c.ToString()));

    [Fact]
    public void EveryLineOfTheFixture_ParsesAsTheRegexParsedIt()
    {
        foreach (var line in FixtureLines.Value.Concat(OtherFormats))
        {
            AssertSameParse(line);
        }
    }

    // What mutated lines are made of: numbers that do not read or are out of range, odd whitespace,
    // characters beyond ASCII of every class the regex distinguishes (letters, marks, digits, spaces,
    // surrogates), brackets, flags columns of every length.
    private static readonly string[] Numbers =
    [
        "", "0", "1", "-1", "+1", "10", "11", "007", "99999999999999999999", "2147483647", "2147483648", "0x", "0x0", "0X1f",
        "0xFFFFFFFFFFFFFFFF", "0x7fffffffffffffff", "0x10000000000", "0xffffffffff", "0x000000000000000001", "1e5", "1.5", "٣", "１", "0\0", "0x1g",
        "00000000000000000001", "9223372036854775807", "9223372036854775808", "1,000",
    ];

    private static readonly string[] Inserts =
    [
        " ", "  ", "\t", "\u00a0", "\r", "\v", "\f", "\u0085", "\u2028", "\u3000", "\u200b", "é", "ß", "\u0301", "\u0903", "\u200c", "\u00b2",
        "\ufffd", "😀", "\ud800", "٣", "٫", "_", ".", ":", "=", "[", "]", "[12]", "[0] ", "kmem:", "mm_page_", "\0", "\u2212", "\n",
    ];

    private static readonly string[] Fields =
    [
        "order=11", "order=10", "pfn=0x1", "pfn=0", "pfn=", "percpu_refill=2", "percpu_refill=0", "change_ownership=1", "gfp_flags=", "gfp_flags=GFP_KERNEL",
        "gfp_flags=GFP_ATOMIC|__GFP_BOGUS", "x=y=z", "=5", "migratetype=-2", "alloc_migratetype=+3", "fallback_migratetype=x", "alloc_order=3",
        "migratetype=٣", "pfn=0x٣", "page=", "é=1", "pfné=1", "order==1",
    ];

    private static readonly string[] Flags = ["d", "d.", "d..", "d..2", "d..2.", "dN.2.1", "d..2.1.", "1234.5", "....", "d..é", "d.\u0301.2"];

    private static readonly string[] Times = ["3521", "3521.", ".5", "1e3", "1.000000", "0.0", "123456789012.345678", "1." + new string('9', 20), new string('9', 400) + ".5", "٣.5", "1.٣"];

    private static string Mutate(string line, int seed)
    {
        var random = new Random(seed);
        string Pick(string[] xs) => xs[random.Next(xs.Length)];
        var n = random.Next(1, 4);
        for (var i = 0; i < n; i++)
        {
            var at = line.Length == 0 ? 0 : random.Next(line.Length + 1);
            var tokens = line.Split(' ');
            line = random.Next(12) switch
            {
                0 => line[..at],
                1 when tokens.Length > 2 => Swap(tokens, random.Next(tokens.Length), random.Next(tokens.Length)),
                2 => ReplaceNumber(line, random, Pick(Numbers)),
                3 => line.Insert(at, Pick(Inserts)),
                4 when line.Length > 0 => line.Remove(Math.Min(at, line.Length - 1), 1),
                5 => line + " " + Pick(Fields),
                6 => line.Insert(line.LastIndexOf(' ') + 1, Pick(Fields) + " "),
                7 => line.Contains("kmem:", StringComparison.Ordinal) ? line.Replace("kmem:", random.Next(2) == 0 ? "" : "kmem:kmem:", StringComparison.Ordinal) : line.Replace("mm_page_", "kmem:mm_page_", StringComparison.Ordinal),
                8 => line.Replace("mm_page_alloc", Pick(["mm_page_allocX", "mm_page_", "mm_page_alloc_zone_lockedé", "mm_page_free", "mm_page_alloc :"]), StringComparison.Ordinal),
                9 when line.IndexOf(']', StringComparison.Ordinal) is var close && close >= 0 => line.Insert(close + 1, " " + Pick(Flags)),
                10 => ReplaceTime(line, Pick(Times)),
                11 when line.IndexOf('[', StringComparison.Ordinal) is var open && open >= 0 && line.IndexOf(']', StringComparison.Ordinal) is var end && end > open =>
                    line[..(open + 1)] + Pick(["", "٣", "-1", "99999999999", "0001", "1 ", " 1", "2147483648"]) + line[end..],
                _ => line + Pick(Inserts),
            };
        }
        return line;
    }

    private static string Swap(string[] tokens, int a, int b)
    {
        (tokens[a], tokens[b]) = (tokens[b], tokens[a]);
        return string.Join(' ', tokens);
    }

    private static string ReplaceNumber(string line, Random random, string with)
    {
        var eq = line.IndexOf('=', random.Next(Math.Max(1, line.Length)));
        if (eq < 0)
        {
            return line;
        }
        var end = line.IndexOf(' ', eq);
        return line[..(eq + 1)] + with + (end < 0 ? "" : line[end..]);
    }

    private static string ReplaceTime(string line, string with)
    {
        var colon = line.IndexOf(": ", StringComparison.Ordinal);
        if (colon < 0)
        {
            return line;
        }
        var start = line.LastIndexOf(' ', colon) + 1;
        return line[..start] + with + line[colon..];
    }

    private static readonly Lazy<string[]> Templates = new(() => [.. FixtureLines.Value.Where(l => l.Length > 0).Take(400), .. OtherFormats]);

    [Fact]
    public void MutatedLines_ParseAsTheRegexParsedThem()
    {
        Gen.Select(Gen.Int[0, Templates.Value.Length - 1], Gen.Int)
            .Sample((line, seed) => AssertSameParse(Mutate(Templates.Value[line], seed)), iter: 40_000);
    }

    /// <summary>Every UTF-16 character in each place where the regex's classes (\d, \s, \w, [\w.], \S) decide.</summary>
    [Fact]
    public void EveryCharacter_InEveryPlaceThatClassifiesIt_ParsesAsTheRegexParsedIt()
    {
        string[] templates =
        [
            "  perf 1 [0X0]  1.000000: kmem:mm_page_free: page=0x1 pfn=0x5 order=0",
            "  perf 1 [000]X 1.000000: kmem:mm_page_free: page=0x1 pfn=0x5 order=0",
            "  git-1 [000] d.X2. 1.000000: mm_page_free: page=0x1 pfn=0x5 order=0",
            "  git-1 [000] d..2X 1.000000: mm_page_free: page=0x1 pfn=0x5 order=0",
            "  perf 1 [000]  1.0X0: kmem:mm_page_free: page=0x1 pfn=0x5 order=0",
            "  perf 1 [000]  1.000000:Xkmem:mm_page_free: page=0x1 pfn=0x5 order=0",
            "  perf 1 [000]  1.000000: kmem:mm_page_freeX: page=0x1 pfn=0x5 order=0",
            "  perf 1 [000]  1.000000: kmem:mm_page_free:Xpage=0x1 pfn=0x5 order=0",
            "  perf 1 [000]  1.000000: kmem:mm_page_free: page=0x1 pXfn=0x5 pfn=0x6 order=0",
            "  perf 1 [000]  1.000000: kmem:mm_page_free: page=0x1 Xpfn=0x5 order=1 pfn=0x6",
            "  perf 1 [000]  1.000000: kmem:mm_page_free: page=0x1 pfn=0x5 order=X0",
            "  perf 1 [000]  1.000000: kmem:mm_page_alloc: page=0x1 pfn=0x5 order=0 gfp_flags=GFP_KERNELX|__GFP_COMP order=1",
            "  perf 1 [000]  1.000000: kmem:mm_page_alloc: page=0x1 pfn=0x5 order=0 gfp_flags=X",
        ];
        for (var c = 0; c <= char.MaxValue; c++)
        {
            foreach (var template in templates)
            {
                AssertSameParse(template.Replace("X", ((char)c).ToString(), StringComparison.Ordinal));
            }
        }
    }

    private static async Task<string> Replay(byte[] trace, bool gzip, int cpus, int every, int points, TextBounds? bounds = null)
    {
        var machine = Machine(cpus);
        var replayer = new TraceReplayer(machine, machine.FindZone("Normal")!, every, points);
        using var lines = TraceInput.Open(new MemoryStream(trace), gzip, bounds);
        return JsonSerializer.Serialize(await replayer.ReplayAsync(lines, Ct), Json);
    }

    private static async Task<string> ReferenceReplay(byte[] trace, bool gzip, int cpus, int every, int points, TextBounds? bounds = null)
    {
        var machine = Machine(cpus);
        var replayer = new ReferenceTraceReplayer(machine, machine.FindZone("Normal")!, every, points);
        Stream stream = new MemoryStream(trace);
        using var lines = new ReferenceLineReader(gzip ? new GZipStream(stream, CompressionMode.Decompress) : stream, bounds ?? TextBounds.Default);
        while (await lines.ReadLineAsync(Ct) is { } line)
        {
            replayer.Read(line);
        }
        return JsonSerializer.Serialize(replayer.Result(), Json);
    }

    private static Machine Machine(int cpus)
    {
        var config = MachineConfig.Default();
        config.Cpus = cpus;
        return new Machine(config);
    }

    [Theory]
    [InlineData(true, 2, 10_000, TraceReplayer.DefaultTimelinePoints)]
    [InlineData(false, 2, 1000, TraceReplayer.DefaultTimelinePoints)]
    [InlineData(true, 4, 50, 16)]
    [InlineData(false, 1, 1, 7)]
    public async Task TheFixture_ReplaysByteForByteAsTheReferenceDid(bool gzip, int cpus, int every, int points)
    {
        var gz = await File.ReadAllBytesAsync(Fixture("git-clone-tar.perf-script.txt.gz"), Ct);
        var trace = gzip ? gz : Encoding.UTF8.GetBytes(string.Join('\n', FixtureLines.Value));

        Assert.Equal(await ReferenceReplay(trace, gzip, cpus, every, points), await Replay(trace, gzip, cpus, every, points));
    }

    /// <summary>The tool's JSON for the fixture as the replayer before issue 27 printed it (committed beside the trace).</summary>
    [Theory]
    [InlineData("git-clone-tar.replay.json")]
    [InlineData("git-clone-tar.replay-cpus4-every50-points16.json", "--cpus", "4", "--timeline-every", "50", "--timeline-points", "16")]
    public async Task TheToolsJson_IsWhatItPrintedBefore(string expected, params string[] options)
    {
        var output = new StringWriter();
        var exit = await ReplayCommand.Create().Parse([Fixture("git-clone-tar.perf-script.txt.gz"), "--json", .. options])
            .InvokeAsync(new() { Output = output, Error = new StringWriter() }, Ct);

        Assert.Equal(0, exit);
        Assert.Equal(await File.ReadAllTextAsync(Fixture(expected), Ct), output.ToString());
    }

    /// <summary>
    /// A trace of the fixture's lines with mutated ones among them, some ending in "\r\n", some with
    /// bytes that are not UTF-8, empty lines, a line past 200 characters, no '\n' at the end: replayed
    /// by both, byte for byte the same result (counts, the first lines that are not events, the timeline).
    /// </summary>
    [Fact]
    public async Task AMutatedTrace_ReplaysByteForByteAsTheReferenceDid()
    {
        for (var seed = 0; seed < 6; seed++)
        {
            var random = new Random(seed);
            var trace = new MemoryStream();
            foreach (var line in FixtureLines.Value.Take(1500 + seed * 400))
            {
                var text = random.Next(3) == 0 ? Mutate(line, random.Next()).Replace("\n", "", StringComparison.Ordinal) : line;
                var bytes = Encoding.UTF8.GetBytes(text).ToList();
                if (random.Next(40) == 0 && bytes.Count > 0)
                {
                    bytes.Insert(random.Next(bytes.Count), (byte)random.Next(0x80, 0x100)); // not UTF-8
                }
                if (random.Next(300) == 0)
                {
                    bytes.AddRange(Encoding.UTF8.GetBytes(" " + new string('x', 300)));
                }
                trace.Write([.. bytes]);
                trace.Write(random.Next(10) == 0 ? "\r\n"u8 : random.Next(50) == 0 ? "\n\n"u8 : "\n"u8);
            }
            trace.Write("            perf 1 [000]  9.000000:             kmem:mm_page_free: page=0x1 pfn=0x1 order=0"u8);
            var bytesOfTrace = trace.ToArray();

            Assert.Equal(await ReferenceReplay(bytesOfTrace, false, 2, 97, 9), await Replay(bytesOfTrace, false, 2, 97, 9));
        }
    }

    /// <summary>A stream that hands out at most a few bytes a read, so that lines and bounds fall across reads.</summary>
    private sealed class Trickle(byte[] bytes, int seed) : Stream
    {
        private readonly Random _random = new(seed);
        private int _at;

        public override int Read(byte[] buffer, int offset, int count)
        {
            var n = Math.Min(Math.Min(count, bytes.Length - _at), _random.Next(1, 9));
            Array.Copy(bytes, _at, buffer, offset, n);
            _at += n;
            return n;
        }

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => bytes.Length;
        public override long Position { get => _at; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }

    /// <summary>The lines read, then the refusal if any ("Limit Value Message"), as one list.</summary>
    private static async Task<List<string>> ReadAll(Func<Task<string?>> next)
    {
        var lines = new List<string>();
        try
        {
            while (await next() is { } line)
            {
                lines.Add(line);
            }
        }
        catch (TextTooLargeException tooLarge)
        {
            lines.Add($"refused: {tooLarge.Limit} {tooLarge.Value} {tooLarge.Message}");
        }
        return lines;
    }

    /// <summary>
    /// Lines at and around --max-line-bytes (with and without '\r'), texts at and past --max-bytes,
    /// arriving a few bytes at a time: the span reader gives the same lines, and refuses at the same
    /// line with the same exception, as the string reader before it; so does its ReadLineAsync.
    /// </summary>
    [Fact]
    public async Task TheBounds_RefuseWhereAndAsTheyDid()
    {
        for (var seed = 0; seed < 400; seed++)
        {
            var random = new Random(seed);
            var maxLine = random.Next(1, 12);
            var text = new StringBuilder();
            for (var i = random.Next(1, 12); i > 0; i--)
            {
                text.Append('a', random.Next(0, maxLine + 3)).Append(random.Next(3) == 0 ? "\r" : "").Append(random.Next(8) == 0 ? "" : "\n");
            }
            var bytes = Encoding.UTF8.GetBytes(text.ToString());
            var bounds = new TextBounds(random.Next(2) == 0 ? long.MaxValue : random.Next(0, bytes.Length + 2), maxLine, "--max-bytes", "--max-line-bytes");

            using var reference = new ReferenceLineReader(new Trickle(bytes, seed), bounds);
            var expected = await ReadAll(() => reference.ReadLineAsync(Ct).AsTask());
            using var strings = new BoundedLineReader(new Trickle(bytes, seed), bounds);
            var fromStrings = await ReadAll(() => strings.ReadLineAsync(Ct).AsTask());
            using var spans = new BoundedLineReader(new Trickle(bytes, seed), bounds);
            var fromSpans = await ReadAll(() => NextSpan(spans));

            Assert.Equal(expected, fromStrings);
            Assert.Equal(expected, fromSpans);
        }
    }

    private static async Task<string?> NextSpan(BoundedLineReader reader)
    {
        while (true)
        {
            if (Take(reader) is { } line)
            {
                return line;
            }
            if (!await reader.FillAsync(Ct))
            {
                return null;
            }
        }
    }

    private static string? Take(BoundedLineReader reader) => reader.TryReadLine(out var line) ? Encoding.UTF8.GetString(line) : null;
}

/// <summary>ReplayAsync, which parses on one thread and simulates on another: what it does when the reader refuses.</summary>
public class PipelinedReplayTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static byte[] Trace(int lines, int longLineAt)
    {
        var text = new StringBuilder();
        for (var i = 0; i < lines; i++)
        {
            text.Append(i == longLineAt ? new string('x', 500) : $"            perf 1 [000]  1.{i:D6}:             kmem:mm_page_alloc: page=0x{0x5000 + i:x} pfn=0x{0x5000 + i:x} order=0 migratetype=0 gfp_flags=GFP_KERNEL").Append('\n');
        }
        return Encoding.UTF8.GetBytes(text.ToString());
    }

    /// <summary>
    /// A line past the bound, after 30,000 events: the refusal is thrown, and every line before it was
    /// simulated first (the snapshots taken are the reference's, which read line by line).
    /// </summary>
    [Theory]
    [InlineData(30_000)]
    [InlineData(0)]
    [InlineData(4095)]
    [InlineData(4096)]
    public async Task ALineTooLong_IsRefused_AfterEveryLineBeforeItWasSimulated(int longLineAt)
    {
        var trace = Trace(longLineAt + 10, longLineAt);
        var bounds = new TextBounds(long.MaxValue, 400, "--max-bytes", "--max-line-bytes");

        var machine = TestMachines.Small(cpus: 2);
        var seen = new List<long>();
        var replayer = new TraceReplayer(machine, machine.Normal(), timelineEvery: 100) { OnSnapshot = s => seen.Add(s.Events) };
        using var lines = TraceInput.Open(new MemoryStream(trace), gzip: false, bounds);
        var refused = await Assert.ThrowsAsync<TextTooLargeException>(() => replayer.ReplayAsync(lines, Ct));

        var referenceMachine = TestMachines.Small(cpus: 2);
        var expected = new List<long>();
        var reference = new ReferenceTraceReplayer(referenceMachine, referenceMachine.Normal(), timelineEvery: 100) { OnSnapshot = s => expected.Add(s.Events) };
        using var referenceLines = new ReferenceLineReader(new MemoryStream(trace), bounds);
        var referenceRefused = await Assert.ThrowsAsync<TextTooLargeException>(async () =>
        {
            while (await referenceLines.ReadLineAsync(Ct) is { } line)
            {
                reference.Read(line);
            }
        });

        Assert.Equal((referenceRefused.Limit, referenceRefused.Message), (refused.Limit, refused.Message));
        Assert.Equal(expected, seen);
    }

    [Fact]
    public async Task BadGzip_IsThrownAsItWas()
    {
        var machine = TestMachines.Small(cpus: 2);
        using var lines = TraceInput.Open(new MemoryStream([0x1f, 0x8b, .. Enumerable.Range(0, 100).Select(i => (byte)(i * 31 % 256))]), gzip: true);

        await Assert.ThrowsAsync<InvalidDataException>(() => new TraceReplayer(machine, machine.Normal()).ReplayAsync(lines, Ct));
    }

    [Fact]
    public async Task ACallbackThatThrows_StopsTheReplay_WithItsException()
    {
        var machine = TestMachines.Small(cpus: 2);
        using var lines = TraceInput.Open(new MemoryStream(Trace(50_000, -1)), gzip: false);
        var replayer = new TraceReplayer(machine, machine.Normal(), timelineEvery: 1000) { OnSnapshot = _ => throw new InvalidOperationException("stop") };

        var thrown = await Assert.ThrowsAsync<InvalidOperationException>(() => replayer.ReplayAsync(lines, Ct));
        Assert.Equal("stop", thrown.Message);
    }

    [Fact]
    public async Task ACancelledReplay_IsCancelled()
    {
        var machine = TestMachines.Small(cpus: 2);
        using var lines = TraceInput.Open(new MemoryStream(Trace(10, -1)), gzip: false);
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => new TraceReplayer(machine, machine.Normal()).ReplayAsync(lines, cancelled.Token));
    }
}
