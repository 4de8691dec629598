using System.Text.Json.Nodes;
using PageAlloc.Experiment;

namespace PageAlloc.Tests.Unit;

/// <summary>tools/Experiment's command line, run in-process with its output and errors captured.</summary>
public sealed class ExperimentToolTests : IDisposable
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("experiment-");

    public void Dispose() => _dir.Delete(recursive: true);

    private static async Task<(int Exit, string Output, string Error)> Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var exit = await ExperimentCommand.Create().Parse(args).InvokeAsync(new() { Output = output, Error = error }, Ct);
        return (exit, output.ToString(), error.ToString());
    }

    private static string FixtureTrace => Path.Combine(AppContext.BaseDirectory, "Fixtures", "traces", "git-clone-tar.perf-script.txt.gz");

    [Fact]
    public async Task TheSeedClaim_FromTheCommandLine_PrintsTheVariantsSideBySide_AndWritesJsonAndCsv()
    {
        var json = Path.Combine(_dir.FullName, "result.json");
        var csv = Path.Combine(_dir.FullName, "timelines.csv");

        var (exit, output, error) = await Run("--fragment", "262144:9:0.9", "--range-every", "50", "--repeat", "2", "--json", json, "--csv", csv);

        Assert.True(exit == 0, error);
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Matches(@"per-page\s+chunked\s+upstream", lines[1]);
        var blocks = lines.Single(l => l.StartsWith("free_blocks_order9_final", StringComparison.Ordinal));
        Assert.Matches(@"^free_blocks_order9_final\s+\d \[\d\.\.\d\]\s+4\d \[4\d\.\.4\d\] \(\+4\d\)", blocks);
        var result = JsonNode.Parse(await File.ReadAllTextAsync(json, Ct))!;
        Assert.Equal("per-page", (string)result["spec"]!["variants"]![0]!["strategy"]!);
        Assert.Equal(2, result["variants"]![2]!["runs"]!.AsArray().Count);
        var rows = (await File.ReadAllLinesAsync(csv, Ct)).Length;
        Assert.Equal(1 + result["variants"]!.AsArray().Sum(v => v!["runs"]!.AsArray().Sum(r => r!["timeline"]!.AsArray().Count)), rows);
    }

    [Fact]
    public async Task ATraceFile_AndVariantsOfEveryKind_Run()
    {
        var (exit, output, error) = await Run("--trace", FixtureTrace, "--variant", "base", "--variant", "tight:min-free-kbytes=200000,strategy=per-page",
            "--variant", "faulty:fail-probability=50,fail-times=-1,fail-ignore-gfp-wait=0,fail-min-order=1", "--range-every", "100");

        Assert.True(exit == 0, error);
        Assert.StartsWith("Trace git-clone-tar.perf-script.txt.gz on zone Normal: 3 variants", output, StringComparison.Ordinal);
        Assert.Matches(@"high_order_failures\s+0 \[0\.\.0\]\s+0 \[0\.\.0\] \(\+0\)\s+[1-9]\d* \[", output); // fail_page_alloc fails the range user's order-9 allocations
    }

    [Theory]
    [InlineData("--variant", "a:strategy=nope")]
    [InlineData("--variant", "a:colour=blue")]
    [InlineData("--zone", "Nowhere")]
    [InlineData("--repeat", "11")]
    [InlineData("--trace", "/no/such/trace")]
    [InlineData("--fragment", "1:2")]
    public async Task ABadExperiment_Exits2_SayingWhy(string option, string value)
    {
        var (exit, output, error) = await Run(option, value);

        Assert.Equal(ExperimentCommand.InvalidExit, exit);
        Assert.Empty(output);
        Assert.NotEmpty(error);
    }
}
