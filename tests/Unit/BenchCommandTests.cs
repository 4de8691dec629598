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
    [InlineData("snapshot")]
    public void OtherCommands_KeepTheirLoopIterations(string command) => Assert.Equal(100_000, Parse(command).Iterations);

    /// <summary>
    /// zonesize's help says what it needs, worked out from the pages it boots (2^18 + 2^28): the flag and
    /// order bytes boot touches resident (2 a page, 512 MiB; 555 MiB peak RSS measured with the runtime),
    /// and the whole page state (MachineConfig.StateBytes) committed; it said "about 3 GB".
    /// </summary>
    [Fact]
    public void ZoneSize_Help_SaysWhatItNeeds_FromThePagesItBoots()
    {
        var description = BenchCommand.Create().Subcommands.Single(c => c.Name == "zonesize").Description!;
        const long pages = (1L << 18) + (1L << 28);

        Assert.Contains($"about {pages * 2 >> 20} MiB of memory for page state", description, StringComparison.Ordinal);
        Assert.Contains($"it commits the whole page state, {pages * (Domain.Model.MachineConfig.StateBytesPerPage + 1) >> 20} MiB", description, StringComparison.Ordinal);
        Assert.DoesNotContain("3 GB", description, StringComparison.Ordinal);
    }
}
