using PageAlloc.Bench;

namespace PageAlloc.Tests.Unit;

/// <summary>bench/PageAlloc.Bench's command line: what each command says it runs is what it runs.</summary>
public class BenchCommandTests
{
    private static Options Parse(params string[] args)
    {
        var parse = BenchCommand.Create().Parse(args);
        Assert.Empty(parse.Errors);
        return BenchCommand.OptionsFrom(parse);
    }

    [Theory]
    [InlineData(1000)]
    [InlineData(3)]
    public void Vmalloc_Iterations_AreTheRoundsItRuns_AndSays(int iterations)
    {
        var options = Parse("vmalloc", "--iterations", iterations.ToString(System.Globalization.CultureInfo.InvariantCulture));

        Assert.Equal(iterations, VmallocCommand.Rounds(options));
        Assert.Contains($", {iterations} rounds,", VmallocCommand.Header(options), StringComparison.Ordinal);
    }

    [Fact]
    public void Vmalloc_ByDefault_Runs1000Rounds_AsDocsResultsSays()
    {
        var options = Parse("vmalloc");

        Assert.Equal(1000, VmallocCommand.Rounds(options));
        Assert.Equal("vmalloc(4096 pages) + vfree via free_pages_bulk, 1000 rounds, zone Normal, cpu 0", VmallocCommand.Header(options));
    }

    [Theory]
    [InlineData("seed")]
    [InlineData("zonesize")]
    public void OtherCommands_KeepTheirLoopIterations(string command) => Assert.Equal(100_000, Parse(command).Iterations);
}
