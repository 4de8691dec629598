using System.Text.Json;
using PageAlloc.Domain.Model;
using static PageAlloc.Domain.Model.PageAllocConstants;

namespace PageAlloc.Tests.Unit;

/// <summary>The table of free strategies is the one place a strategy is described.</summary>
public class FreeStrategyTableTests
{
    public static TheoryData<FreeStrategy> EveryStrategy() => [.. Enum.GetValues<FreeStrategy>()];

    [Theory]
    [MemberData(nameof(EveryStrategy))]
    public void EveryStrategy_HasItsRow_NamedAsTheApiSpellsIt(FreeStrategy strategy)
    {
        var row = FreeStrategies.Of(strategy);

        Assert.Equal(strategy, row.Strategy);
        Assert.Equal(JsonNamingPolicy.KebabCaseLower.ConvertName(strategy.ToString()), row.Name);
        Assert.True(FreeStrategies.TryParse(row.Name, out var parsed) && parsed == strategy);
        Assert.InRange(row.ChunkCapOrder, 0, MaxPageOrder);
    }

    [Fact]
    public void TheRows_DescribeTheThreeKernelVersions()
    {
        Assert.Equal(
            [("per-page", true, 0, false), ("chunked", false, PageblockOrder, false), ("upstream", false, MaxPageOrder, true)],
            FreeStrategies.All.Select(r => (r.Name, r.PageByPage, r.ChunkCapOrder, r.RunsEndAtSections)));
    }

    [Fact]
    public void AValueOutsideTheEnum_IsAnError_NotADefault()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => FreeStrategies.Of((FreeStrategy)7));
        Assert.False(FreeStrategies.TryParse("fastest", out _));
    }
}
