using PageAlloc.Domain.Model;

namespace PageAlloc.Tests.Unit;

public class GfpTests
{
    [Theory]
    [InlineData("GFP_KERNEL", "GFP_KERNEL")]
    [InlineData("GFP_KERNEL|__GFP_COMP", "GFP_KERNEL|__GFP_COMP")]
    [InlineData("__GFP_COMP|GFP_KERNEL", "GFP_KERNEL|__GFP_COMP")]
    [InlineData("GFP_ATOMIC", "GFP_ATOMIC")]
    [InlineData("GFP_TRANSHUGE", "GFP_TRANSHUGE")]
    [InlineData(" GFP_NOWAIT | __GFP_ZERO ", "GFP_NOWAIT|__GFP_ZERO")]
    [InlineData("__GFP_DIRECT_RECLAIM|__GFP_KSWAPD_RECLAIM", "GFP_NOIO")]
    [InlineData("none", "none")]
    public void Parse_ThenFormat_PrintsAsTheTracepointsDo(string input, string printed)
    {
        Assert.True(Gfp.TryParse(input, out var flags, out _));
        Assert.Equal(printed, Gfp.Format(flags));
    }

    [Theory]
    [InlineData("GFP_KERNAL", "GFP_KERNAL")]
    [InlineData("GFP_KERNEL|__GFP_BOGUS", "__GFP_BOGUS")]
    [InlineData("gfp_kernel", "gfp_kernel")]
    [InlineData("GFP_KERNEL||", "")]
    public void Parse_UnknownName_IsRefusedAndNamed(string input, string unknown)
    {
        Assert.False(Gfp.TryParse(input, out _, out var bad));
        Assert.Equal(unknown, bad);
    }

    [Theory]
    [InlineData("GFP_KERNEL", MigrateType.Unmovable)]
    [InlineData("GFP_HIGHUSER_MOVABLE", MigrateType.Movable)]
    [InlineData("GFP_KERNEL|__GFP_RECLAIMABLE", MigrateType.Reclaimable)]
    public void MigrateType_ComesFromTheMobilityBits(string gfp, MigrateType expected)
    {
        Assert.True(Gfp.TryParse(gfp, out var flags, out _));
        Assert.Equal(expected, Gfp.MigrateTypeOf(flags));
    }

    [Fact]
    public void Format_KeepsAtMostItsLimitOfMasks_UnderRacingCallers()
    {
        // 4096 distinct masks from 4 threads: every answer is right, and the cache stays bounded.
        var masks = Enumerable.Range(0, 4096).Select(i => (GfpFlags)((uint)i << 4)).ToArray();
        var first = new string[masks.Length];

        Parallel.For(0, masks.Length, new ParallelOptions { MaxDegreeOfParallelism = 4 }, i => first[i] = Gfp.Format(masks[i]));

        Assert.InRange(Gfp.FormattedCount, 1, Gfp.FormattedLimit);
        for (var i = 0; i < masks.Length; i++)
        {
            Assert.Equal(first[i], Gfp.Format(masks[i]));
        }
    }
}
