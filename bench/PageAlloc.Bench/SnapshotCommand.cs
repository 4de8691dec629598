using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using PageAlloc.Domain.Allocator;
using PageAlloc.Domain.Model;
using PageAlloc.Domain.Snapshots;

namespace PageAlloc.Bench;

/// <summary>
/// `snapshot`: MachineSnapshot.Write, MachineSnapshot.Read and Machine.Fork on the default machine
/// (8 GiB, 2^21 - 1 pages, 4 cpus) in three states: after the seed flow (page_alloc_high_order_test's
/// alloc_pages / split_page / free_contig_range loop, which leaves the machine nearly as booted), after a
/// mixed load (random allocations at mixed orders, gfp masks and cpus, and frees, until half the pages
/// are allocated), and fragmented (every other page of Normal in use: half a million order-0 free
/// blocks, the longest lists there can be). Each is timed in rounds after a warm-up; the medians are
/// reported with the spread, and the snapshot's size with its uncompressed body.
/// </summary>
internal static class SnapshotCommand
{
    public static int Run(Options options)
    {
        var config = MachineConfig.Default();
        var states = new List<(string Name, Func<Machine> Build)>
        {
            ($"seed ({options.Iterations} x order {options.Order}, {FreeStrategies.Name(options.Strategy ?? FreeStrategy.Upstream)})",
                () => Seed(config, options.Iterations, options.Order, options.Strategy ?? FreeStrategy.Upstream)),
            ("mixed (half allocated)", () => Mixed(config, seed: 1)),
            ("fragmented (every other Normal page in use)", () => Fragmented(config)),
        };
        var rows = new List<SnapshotRow>();
        foreach (var (name, build) in states)
        {
            var machine = build();
            var row = Measure(name, machine, options.Rounds);
            if (row is null)
            {
                Console.Error.WriteLine($"{name}: a restored machine did not write the snapshot it was read from.");
                return 1;
            }
            rows.Add(row);
        }

        if (options.Json)
        {
            Console.WriteLine(JsonSerializer.Serialize(new { options.Rounds, FormatVersion = MachineSnapshot.FormatVersion, States = rows }, Json));
            return 0;
        }
        var c = CultureInfo.InvariantCulture;
        Console.WriteLine(string.Create(c,
            $"MachineSnapshot.Write / Read and Machine.Fork, default machine ({config.Nodes.Sum(n => n.Zones.Sum(z => z.Pages))} pages, {config.Cpus} cpus), "
            + $"format version {MachineSnapshot.FormatVersion} (zlib fastest, SHA-256); medians of {options.Rounds} rounds (min-max)"));
        Console.WriteLine();
        foreach (var r in rows)
        {
            Console.WriteLine(string.Create(c, $"{r.State}: {r.AllocatedPages} pages allocated, {r.FreeBlocks} free blocks, {r.PcpPages} pcp pages"));
            Console.WriteLine(string.Create(c,
                $"  snapshot {r.SnapshotBytes} bytes ({r.BodyBytes} uncompressed, {(double)r.BodyBytes / r.SnapshotBytes:F0}x)"));
            Console.WriteLine(string.Create(c, $"  write {Spread(r.WriteMs)}   read {Spread(r.ReadMs)}   fork {Spread(r.ForkMs)}"));
        }
        return 0;
    }

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    private static string Spread(double[] ms) =>
        string.Create(CultureInfo.InvariantCulture, $"{Median(ms),6:F1} ms ({ms.Min():F1}-{ms.Max():F1})");

    private static double Median(double[] values) => values.Order().ElementAt(values.Length / 2);

    /// <summary>Times the three calls, each after a full collection so that one round's garbage is not the next round's pause.</summary>
    private static SnapshotRow? Measure(string name, Machine machine, int rounds)
    {
        var buffer = new MemoryStream();
        byte[] Write()
        {
            buffer.SetLength(0);
            MachineSnapshot.Write(machine, buffer);
            return buffer.ToArray();
        }
        var snapshot = Write();
        using (var again = new MemoryStream())
        {
            MachineSnapshot.Write(MachineSnapshot.Read(new MemoryStream(snapshot)), again);
            if (!again.ToArray().AsSpan().SequenceEqual(snapshot))
            {
                return null;
            }
        }
        WarmUp.Run(() =>
        {
            Write();
            MachineSnapshot.Read(new MemoryStream(snapshot));
            machine.Fork();
        });

        var write = new double[rounds];
        var read = new double[rounds];
        var fork = new double[rounds];
        for (var i = 0; i < rounds; i++)
        {
            write[i] = Time(() =>
            {
                buffer.SetLength(0);
                MachineSnapshot.Write(machine, buffer);
            });
            read[i] = Time(() => MachineSnapshot.Read(new MemoryStream(snapshot)));
            fork[i] = Time(() => machine.Fork());
        }
        var stats = machine.Stats();
        return new SnapshotRow(
            name, stats.Sum(s => s.AllocatedPages), stats.Sum(s => s.NrFree.Sum()), stats.Sum(s => s.PcpPages),
            snapshot.Length, BinaryPrimitives.ReadInt64LittleEndian(snapshot.AsSpan(24)), write, read, fork);
    }

    private static double Time(Action action)
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        var start = Stopwatch.GetTimestamp();
        action();
        return Stopwatch.GetElapsedTime(start).TotalMilliseconds;
    }

    /// <summary>The seed flow on Normal, cpu 0, as PageAllocHighOrderTest runs it, on the machine measured.</summary>
    private static Machine Seed(MachineConfig config, int iterations, int order, FreeStrategy strategy)
    {
        var machine = new Machine(config);
        var zone = machine.FindZone("Normal")!;
        for (var i = 0; i < iterations; i++)
        {
            var block = machine.AllocPages(zone, order, Gfp.Kernel, 0).Value;
            zone.SplitPage(block.Pfn, order);
            zone.FreeContigRange(block.Pfn, 1L << order, strategy, 0);
        }
        return machine;
    }

    /// <summary>
    /// Random allocations (orders 0..3 seven times in ten, else 0..10; four gfp masks; any cpu; a
    /// tenth of the order > 0 ones split) with a free in between one time in three, until half the
    /// machine's pages are allocated. Deterministic for a seed.
    /// </summary>
    private static Machine Mixed(MachineConfig config, int seed)
    {
        var machine = new Machine(config);
        var random = new Random(seed);
        var normal = machine.FindZone("Normal")!;
        GfpFlags[] masks = [Gfp.Kernel, Gfp.HighUserMovable, Gfp.Kernel | GfpFlags.Reclaimable, Gfp.Kernel | GfpFlags.Comp];
        var held = new List<(Zone Zone, long Pfn, int Order)>();
        var total = machine.Zones.Sum(z => (long)z.SpannedPages);
        long allocated = 0;
        while (allocated < total / 2)
        {
            if (held.Count > 0 && random.Next(3) == 0)
            {
                var i = random.Next(held.Count);
                var (zone, pfn, order) = held[i];
                held[i] = held[^1];
                held.RemoveAt(held.Count - 1);
                zone.FreePages(pfn, order, random.Next(config.Cpus));
                allocated -= 1L << order;
                continue;
            }
            var size = random.Next(10) < 7 ? random.Next(4) : random.Next(PageAllocConstants.NrPageOrders);
            var gfp = masks[random.Next(masks.Length)];
            var result = machine.AllocPages(normal, size, gfp, random.Next(config.Cpus));
            if (!result.IsSuccess)
            {
                break;
            }
            var b = result.Value;
            allocated += 1L << size;
            if (size > 0 && !b.Compound && random.Next(10) == 0)
            {
                b.Zone.SplitPage(b.Pfn, size);
                for (var p = 0; p < 1 << size; p++)
                {
                    held.Add((b.Zone, b.Pfn + p, 0));
                }
                continue;
            }
            held.Add((b.Zone, b.Pfn, size));
        }
        return machine;
    }

    /// <summary>Normal taken whole as split order-10 blocks, then every other page freed (nothing can merge), the pcp lists drained.</summary>
    private static Machine Fragmented(MachineConfig config)
    {
        var machine = new Machine(config);
        var zone = machine.FindZone("Normal")!;
        var gfp = Gfp.Kernel | GfpFlags.MemAlloc | GfpFlags.NoRetry | GfpFlags.ThisNode;
        var blocks = new List<long>();
        while (machine.AllocPages(zone, PageAllocConstants.MaxPageOrder, gfp, 0) is { IsSuccess: true } result && result.Value.Zone == zone)
        {
            zone.SplitPage(result.Value.Pfn, PageAllocConstants.MaxPageOrder);
            blocks.Add(result.Value.Pfn);
        }
        foreach (var pfn in blocks)
        {
            for (var p = 0; p < 1 << PageAllocConstants.MaxPageOrder; p += 2)
            {
                zone.FreePages(pfn + p, 0, p & 3);
            }
        }
        zone.DrainPages(null);
        return machine;
    }
}

internal sealed record SnapshotRow(
    string State, long AllocatedPages, long FreeBlocks, long PcpPages, long SnapshotBytes, long BodyBytes,
    double[] WriteMs, double[] ReadMs, double[] ForkMs);
