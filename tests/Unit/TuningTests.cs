using PageAlloc.Domain.Allocator;
using PageAlloc.Domain.Model;
using PageAlloc.Domain.Proc;

namespace PageAlloc.Tests.Unit;

/// <summary>
/// Boot-time tuning against a real kernel: a machine with the managed page counts of the machine
/// this was written on (Linux 6.18, 2 CPUs, min_free_kbytes 67584) must show the same watermarks,
/// protection, batch and high values that its /proc/zoneinfo showed.
/// </summary>
public class TuningTests
{
    private static readonly Machine Real = new(MachineConfig.SingleNode(
        cpus: 2,
        minFreeKbytes: 67584,
        new ZoneConfig { Name = "DMA", StartPfn = 1, Pages = 3840 },
        new ZoneConfig { Name = "DMA32", StartPfn = 4096, Pages = 772917 },
        new ZoneConfig { Name = "Normal", StartPfn = 1048576, Pages = 131072 }));

    [Theory]
    [InlineData("DMA", 71, 88, 105, 122)]
    [InlineData("DMA32", 14385, 17981, 21577, 25173)]
    [InlineData("Normal", 2439, 3048, 3657, 4266)]
    public void Watermarks_MatchTheKernel(string zone, long min, long low, long high, long promo) =>
        Assert.Equal(new Watermarks(min, low, high, promo), Real.FindZone(zone)!.Watermarks);

    [Fact]
    public void LowmemReserve_MatchesTheKernelsProtection()
    {
        Assert.Equal([0L, 3019, 3531, 3531], Real.FindZone("DMA")!.LowmemReserve);
        Assert.Equal([0L, 0, 512, 512], Real.FindZone("DMA32")!.LowmemReserve);
    }

    [Theory]
    [InlineData("DMA", 1, 44, 240)]
    [InlineData("DMA32", 63, 8990, 48307)]
    [InlineData("Normal", 31, 1524, 8192)]
    public void PcpBatchAndHigh_MatchTheKernel(string zone, int batch, int highMin, int highMax)
    {
        var pcp = Real.FindZone(zone)!.Stats().Pcp[0];
        Assert.Equal((batch, highMin, highMax), (pcp.Batch, pcp.HighMin, pcp.HighMax));
    }

    [Fact]
    public void ZoneInfo_PagesetsAndThresholds_ReadAsTheKernelPrintsThem()
    {
        var text = ProcFs.ZoneInfo(Real.Stats(), Real.Cpus);
        Assert.Contains("\n  pagesets\n    cpu: 0\n              count:    0\n              high:     8990\n              batch:    63\n"
            + "              high_min: 8990\n              high_max: 48307\n  vm stats threshold: 24\n", text, StringComparison.Ordinal);
        Assert.Contains("Node 0, zone  Movable\n  pages free     0\n        boost    0\n        min      32\n", text, StringComparison.Ordinal);
        Assert.Contains("        protection: (0, 3019, 3531, 3531)\n      nr_free_pages 3840\n", text, StringComparison.Ordinal);
    }

    [Fact]
    public void BootMinFreeKbytes_IsRaisedByThp_ToWhatTheRealKernelHad()
    {
        // set_recommended_min_free_kbytes() (mm/khugepaged.c): 3 zones up to Normal x (2 + 3 x 3)
        // pageblocks of 512 pages = 16896 pages = 67584 kB, the value this machine's kernel booted with
        // (calculate_min_free_kbytes() alone gives 7622).
        var layout = new[]
        {
            new ZoneConfig { Name = "DMA", StartPfn = 1, Pages = 3840 },
            new ZoneConfig { Name = "DMA32", StartPfn = 4096, Pages = 772917 },
            new ZoneConfig { Name = "Normal", StartPfn = 1048576, Pages = 131072 },
        };

        var thp = new Machine(MachineConfig.SingleNode(2, null, layout));
        var noThp = new Machine(new MachineConfig { Cpus = 2, TransparentHugepages = false, Nodes = [new NodeConfig { Zones = [.. layout] }] });

        Assert.Equal(67584, thp.MinFreeKbytes);
        Assert.Equal(Machine.CalculateMinFreeKbytes(3840 + 772917 + 131072), noThp.MinFreeKbytes);
        Assert.Equal(new Watermarks(2439, 3048, 3657, 4266), thp.FindZone("Normal")!.Watermarks);
    }

    [Fact]
    public void TheDefaultMachine_HasATHPKernelsWatermarksAndPcpHigh()
    {
        // What a 4-cpu THP kernel gives this layout: Normal min/low/high 8448/10560/12672, pcp high 2640.
        var normal = new Machine(MachineConfig.Default()).FindZone("Normal")!;

        Assert.Equal((8448L, 10560L, 12672L), (normal.Watermarks.Min, normal.Watermarks.Low, normal.Watermarks.High));
        Assert.Equal(2640, normal.Stats().Pcp[0].High);
    }

    [Theory]
    [InlineData(1L << 20, 8192)]          // 4 GiB of lowmem: sqrt(4194304 * 16)
    [InlineData(16, 128)]                 // tiny: clamped up
    [InlineData(1L << 30, 262144)]        // 4 TiB: clamped down
    public void MinFreeKbytes_IsIntSqrtOfLowmemKbytesTimes16(long lowmemPages, long expected) =>
        Assert.Equal(expected, Machine.CalculateMinFreeKbytes(lowmemPages));
}
