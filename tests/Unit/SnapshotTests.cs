using System.Buffers.Binary;
using System.IO.Compression;
using System.Security.Cryptography;
using PageAlloc.Domain.Allocator;
using PageAlloc.Domain.Model;
using PageAlloc.Domain.Proc;
using PageAlloc.Domain.Snapshots;
using PageAlloc.Domain.Tracing;

namespace PageAlloc.Tests.Unit;

/// <summary>
/// MachineSnapshot and Machine.Fork: a snapshot restores what was written, byte for byte; a copy
/// shares nothing with its original; a snapshot writes no bytes that are not state; and every bad
/// snapshot (another version, not a snapshot, truncated, damaged, malformed, inconsistent) is
/// refused with the sentence that says so. The format is spelled out here independently of the
/// writer (docs/snapshot-format.md), so a change of layout shows.
/// </summary>
public class SnapshotTests
{
    // docs/snapshot-format.md's header.
    private const int HeaderSize = 104, ConfigLengthAt = 16, BodyLengthAt = 24, CompressedLengthAt = 32, BodyChecksumAt = 40, HeaderChecksumAt = 72;

    /// <summary>A machine with some of everything: split, compound and multi-reference pages, pcp pages, a leaked HWPoison page.</summary>
    private static Machine Busy()
    {
        var m = TestMachines.Small(cpus: 2, minFreeKbytes: null);
        var a = m.Alloc("Normal", 3);
        m.Normal().SplitPage(a.Pfn, 3);
        m.Normal().SetHwPoison(a.Pfn + 1);
        m.Normal().FreePages(a.Pfn + 1, 0, 0);
        m.Alloc("Normal", 2, "GFP_KERNEL|__GFP_COMP", cpu: 1);
        var b = m.Alloc("DMA32", 0, "GFP_DMA32");
        m.FindZone("DMA32")!.GetPage(b.Pfn);
        for (var i = 0; i < 40; i++)
        {
            var c = m.Alloc("Normal", i % 4, "GFP_HIGHUSER_MOVABLE", cpu: i % 2);
            if (i % 3 == 0)
            {
                m.Normal().FreePages(c.Pfn, c.Order, (i + 1) % 2);
            }
        }
        m.VmstatUpdate();
        m.FailPageAlloc.Probability = 30;
        m.FailPageAlloc.Times = -1;
        m.FailPageAlloc.Interval = 3;
        for (var i = 0; i < 10; i++)
        {
            m.AllocPages(m.Normal(), 1, Gfp.Atomic, 0);
        }
        return m;
    }

    private static byte[] Snapshot(Machine m)
    {
        using var stream = new MemoryStream();
        MachineSnapshot.Write(m, stream);
        return stream.ToArray();
    }

    private static Machine Restore(byte[] snapshot, Tracepoints? tracepoints = null) => MachineSnapshot.Read(new MemoryStream(snapshot), tracepoints);

    private static SnapshotException Refused(byte[] snapshot) => Assert.Throws<SnapshotException>(() => Restore(snapshot));

    /// <summary>The /proc texts and the statistics, lock times left out (they are measured, not state).</summary>
    internal static string Texts(Machine m)
    {
        var stats = m.Stats();
        return ProcFs.BuddyInfo(stats) + ProcFs.PageTypeInfo(stats) + ProcFs.ZoneInfo(stats, m.Cpus, m.Vmscan) + ProcFs.VmStat(stats, m.Vmscan)
            + Fragmentation.UnusableIndexText(stats) + Fragmentation.ExtfragIndexText(stats)
            + string.Join("\n", stats.Select(s => s with { Locks = [.. s.Locks.Select(l => l with { WaitNs = 0, HoldNs = 0 })] }).Select(Describe))
            + string.Join(",", m.Memcgs.Select(g => $"{g.Name}:{g.UsagePages}/{g.MaxPages}/{g.MaxEvents}"))
            + m.FailPageAlloc.State;
    }

    /// <summary>Every member of a zone's statistics, arrays spelled out (records print arrays by type name).</summary>
    private static string Describe(ZoneStats s) =>
        $"{s.Zone} {s.Node} {s.Type} {s.StartPfn} {s.SpannedPages} {s.ManagedPages} {s.FreePages} {s.PcpPages} {s.AllocatedPages} {s.HwPoisonLeakedPages} "
        + $"{s.Watermarks} [{string.Join(",", s.LowmemReserve)}] [{string.Join(",", s.NrFree)}] [{string.Join(";", s.NrFreeByType.Select(t => string.Join(",", t)))}] "
        + $"[{string.Join(",", s.PageblocksByType)}] [{string.Join(",", s.PcpBlocksByOrder)}] [{string.Join(";", s.Pcp)}] [{string.Join(",", s.Events)}] "
        + $"[{string.Join(";", s.Locks)}] {s.ReservedHighatomic} {s.FreeHighatomic}";

    [Fact]
    public void ARestoredMachine_WritesTheSameSnapshot_AndShowsTheSameTexts()
    {
        var m = Busy();
        var snapshot = Snapshot(m);
        Assert.Equal(snapshot, Snapshot(m)); // writing changes nothing

        var restored = Restore(snapshot);

        Assert.Equal(snapshot, Snapshot(restored));
        Assert.Equal(Texts(m), Texts(restored));
        restored.AssertConsistent();
    }

    [Fact]
    public void AForkedMachine_WritesTheSameSnapshot_AndShowsTheSameTexts()
    {
        var m = Busy();
        var snapshot = Snapshot(m);

        var fork = m.Fork();

        Assert.Equal(snapshot, Snapshot(fork));
        Assert.Equal(Texts(m), Texts(fork));
        fork.AssertConsistent();
    }

    [Fact]
    public void ABootedDefaultMachine_RoundTrips()
    {
        var m = new Machine(MachineConfig.Default());
        var snapshot = Snapshot(m);

        Assert.Equal(snapshot, Snapshot(Restore(snapshot)));
        Assert.Equal(snapshot, Snapshot(m.Fork()));
    }

    /// <summary>
    /// Changing one machine leaves the others' snapshots as they were (a snapshot is the whole
    /// state; writing one takes no lock, where reading the texts counts lock acquisitions).
    /// </summary>
    [Fact]
    public void ForkAndRestore_ShareNoMutableStateWithTheOriginal()
    {
        var m = Busy();
        var snapshot = Snapshot(m);
        var fork = m.Fork();
        var restored = Restore(snapshot);

        // Change the original in every way a caller can: pages, pcp lists, tuning, fail_page_alloc, counters.
        var held = m.Alloc("Normal", 5);
        m.Normal().SplitPage(held.Pfn, 5);
        m.Normal().FreeContigRange(held.Pfn, 32, FreeStrategy.Chunked, 1);
        m.Alloc("Normal", 0, cpu: 1);
        m.Normal().DrainPages(null);
        m.VmstatUpdate();
        m.FailPageAlloc.Probability = 0;
        m.FailPageAlloc.MinOrder = 4;
        Assert.NotEqual(snapshot, Snapshot(m));

        Assert.Equal(snapshot, Snapshot(fork));
        Assert.Equal(snapshot, Snapshot(restored));

        // And the other way round.
        var original = Snapshot(m);
        fork.Alloc("DMA32", 4);
        fork.FailPageAlloc.Times = 7;
        restored.Alloc("DMA32", 4);
        restored.FailPageAlloc.Verbose = 0;
        Assert.Equal(original, Snapshot(m));
        Assert.NotEqual(snapshot, Snapshot(fork));
        Assert.NotEqual(snapshot, Snapshot(restored));
    }

    [Fact]
    public void MemcgsAreCopied_NotShared()
    {
        var config = MachineConfig.SingleNode(1, 0, new ZoneConfig { Name = "Normal", StartPfn = 0x100000, Pages = 8192 });
        config.Memcgs = [new MemcgConfig { Name = "a", MaxPages = 64 }, new MemcgConfig { Name = "b" }];
        var m = new Machine(config);
        var a = m.FindMemcg("a")!;
        Assert.True(m.AllocPages(m.Normal(), 5, Gfp.KernelAccount, 0, a).IsSuccess);
        Assert.False(m.AllocPages(m.Normal(), 6, Gfp.KernelAccount, 0, a).IsSuccess); // a max event

        var fork = m.Fork();
        var restored = Restore(Snapshot(m));

        foreach (var copy in new[] { fork, restored })
        {
            var ca = copy.FindMemcg("a")!;
            Assert.NotSame(a, ca);
            Assert.Equal((32L, 1L), (ca.UsagePages, ca.MaxEvents));
            Assert.True(copy.AllocPages(copy.Normal(), 5, Gfp.KernelAccount, 0, ca).IsSuccess);
            Assert.Equal(32, a.UsagePages);
            copy.AssertConsistent();
        }
    }

    /// <summary>
    /// Next and Prev are allocated uninitialised, and a page on no list keeps whatever links it
    /// had: garbage there must never reach a snapshot. Scribbling over every link a list does not
    /// use changes no byte, and a restored machine (whose unused links are whatever its new arrays
    /// held) writes the same bytes as the original.
    /// </summary>
    [Fact]
    public void ASnapshot_HoldsNoBytesThatAreNotState()
    {
        var m = Busy();
        var snapshot = Snapshot(m);
        var random = new Random(7);
        foreach (var zone in m.Zones)
        {
            for (var idx = 0; idx < zone.SpannedPages; idx++)
            {
                // Heads of blocks on a free or pcp list use their links (order-10 heads use the
                // per-block slots instead, and their per-page links are as unused as any).
                var listed = (zone.Flags[idx] & (byte)(PageFlags.Buddy | PageFlags.Pcp)) != 0 && zone.Order[idx] < PageAllocConstants.MaxPageOrder;
                if (!listed)
                {
                    zone.Next[idx] = random.Next();
                    zone.Prev[idx] = random.Next();
                }
            }
        }

        Assert.Equal(snapshot, Snapshot(m));
        Assert.Equal(snapshot, Snapshot(Restore(snapshot)));
        m.AssertConsistent(); // last: its locking counts in the lock statistics a snapshot holds
    }

    [Fact]
    public void Config_IsTheMachinesOwn_AndACopy()
    {
        var sized = MachineConfig.Default().WithZonePages(0, "Normal", 300_000);
        var m = new Machine(sized);
        sized.Cpus = 8; // the caller's object, changed after the boot

        var config = m.Config;
        config.Cpus = 16;

        Assert.Equal(4, m.Config.Cpus);
        Assert.Equal(300_000, m.Config.Nodes[0].Zones.Single(z => z.Name == "Normal").Pages);
        var restored = Restore(Snapshot(m));
        Assert.Equal(300_000, restored.Normal().SpannedPages);
        Assert.Equal(4, restored.Cpus);
    }

    [Fact]
    public void ARestoredMachine_InjectsTheSameFailures()
    {
        var m = Busy();
        m.FailPageAlloc.Probability = 50;
        m.FailPageAlloc.Interval = 1;
        var fork = m.Fork();
        var restored = Restore(Snapshot(m));

        string Draws(Machine x) => string.Concat(Enumerable.Range(0, 200).Select(_ => x.AllocPages(x.Normal(), 1, Gfp.Atomic, 0).IsSuccess ? '.' : 'x'));

        var expected = Draws(m);
        Assert.Contains('x', expected);
        Assert.Contains('.', expected);
        Assert.Equal(expected, Draws(fork));
        Assert.Equal(expected, Draws(restored));
    }

    [Fact]
    public void ListenersAreNotPartOfASnapshot_TheNewMachineUsesTheTracepointsGiven()
    {
        var m = Busy();
        using var listener = m.Tracepoints.Listen(new TraceFilter(TraceFilter.AllTypes), 1024);
        var tracepoints = new Tracepoints();

        var restored = Restore(Snapshot(m), tracepoints);
        var fork = m.Fork();

        Assert.Same(tracepoints, restored.Tracepoints);
        Assert.False(restored.Tracepoints.Enabled);
        Assert.NotSame(m.Tracepoints, fork.Tracepoints);
        Assert.False(fork.Tracepoints.Enabled);
    }

    // ---- Refusals ----

    [Fact]
    public void AnotherFormatVersion_IsRefused_NotConverted()
    {
        var snapshot = Snapshot(Busy());
        BinaryPrimitives.WriteUInt16LittleEndian(snapshot.AsSpan(8), 3);

        var e = Refused(snapshot);

        Assert.Equal(SnapshotProblem.UnsupportedVersion, e.Problem);
        Assert.Equal("snapshot format version 3 is not one this service reads (1..2): a snapshot of another version is refused, not converted.", e.Message);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(7)]
    public void AWrongMagic_IsNotASnapshot(int at)
    {
        var snapshot = Snapshot(Busy());
        snapshot[at] ^= 0x20;

        var e = Refused(snapshot);

        Assert.Equal(SnapshotProblem.NotASnapshot, e.Problem);
        Assert.StartsWith("this is not a PageAlloc snapshot: it starts with ", e.Message, StringComparison.Ordinal);
        Assert.Contains("not the snapshot magic 895041530D0A1A0A", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TextIsNotASnapshot_NorIsNothing()
    {
        Assert.Equal(SnapshotProblem.NotASnapshot, Refused("{\"machine\": 1}"u8.ToArray()).Problem);
        Assert.Equal("this is not a PageAlloc snapshot: it is empty.", Refused([]).Message);
    }

    [Fact]
    public void ATruncatedSnapshot_IsRefused_WhereverItEnds()
    {
        var snapshot = Snapshot(Busy());
        var configLength = BinaryPrimitives.ReadInt32LittleEndian(snapshot.AsSpan(ConfigLengthAt));
        var bodyAt = HeaderSize + configLength;
        foreach (var length in new[] { 4, 9, 50, HeaderSize, HeaderSize + (configLength / 2), bodyAt, bodyAt + 10, (snapshot.Length + bodyAt) / 2, snapshot.Length - 1 })
        {
            var e = Refused(snapshot[..length]);

            Assert.True(e.Problem == SnapshotProblem.Truncated, $"{length}: {e.Problem}: {e.Message}");
            Assert.StartsWith("the snapshot is truncated: ", e.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void AFlippedByteInTheBody_IsDamage()
    {
        var snapshot = Snapshot(Busy());
        var bodyAt = HeaderSize + BinaryPrimitives.ReadInt32LittleEndian(snapshot.AsSpan(ConfigLengthAt));
        foreach (var at in new[] { bodyAt, bodyAt + 3, (snapshot.Length + bodyAt) / 2, snapshot.Length - 1 })
        {
            var damaged = (byte[])snapshot.Clone();
            damaged[at] ^= 0x10;

            var e = Refused(damaged);

            Assert.Equal(SnapshotProblem.Damaged, e.Problem);
            Assert.Equal("the snapshot is damaged: its body's checksum does not match.", e.Message);
        }
    }

    [Theory]
    [InlineData(BodyLengthAt)]
    [InlineData(CompressedLengthAt + 1)]
    [InlineData(BodyChecksumAt)]
    [InlineData(HeaderChecksumAt + 5)]
    [InlineData(HeaderSize + 2)] // inside the configuration section
    public void AFlippedByteInTheHeaderOrConfiguration_IsDamage(int at)
    {
        var snapshot = Snapshot(Busy());
        snapshot[at] ^= 0x01;

        var e = Refused(snapshot);

        Assert.Equal(SnapshotProblem.Damaged, e.Problem);
        Assert.StartsWith("the snapshot is damaged: ", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void BytesAfterTheEnd_AreRefused()
    {
        var snapshot = Snapshot(Busy());

        var e = Refused([.. snapshot, 0]);

        Assert.Equal(SnapshotProblem.Malformed, e.Problem);
        Assert.Contains("bytes follow the end of its body", e.Message, StringComparison.Ordinal);
    }

    // ---- Snapshots whose checksums match but whose content is wrong (a faulty or hostile writer) ----

    private static byte[] ConfigOf(byte[] snapshot) =>
        snapshot.AsSpan(HeaderSize, BinaryPrimitives.ReadInt32LittleEndian(snapshot.AsSpan(ConfigLengthAt))).ToArray();

    private static byte[] BodyOf(byte[] snapshot)
    {
        var at = HeaderSize + BinaryPrimitives.ReadInt32LittleEndian(snapshot.AsSpan(ConfigLengthAt));
        using var zlib = new ZLibStream(new MemoryStream(snapshot, at, snapshot.Length - at), CompressionMode.Decompress);
        using var body = new MemoryStream();
        zlib.CopyTo(body);
        return body.ToArray();
    }

    /// <summary>A snapshot of this configuration section and body, with valid checksums, as docs/snapshot-format.md lays it out.</summary>
    private static byte[] Signed(byte[] config, byte[] body, long? declaredBodyLength = null, CompressionLevel level = CompressionLevel.Fastest)
    {
        using var compressed = new MemoryStream();
        using (var zlib = new ZLibStream(compressed, level, leaveOpen: true))
        {
            zlib.Write(body);
        }
        var bodyBytes = compressed.ToArray();
        var header = new byte[HeaderSize];
        byte[] magic = [0x89, (byte)'P', (byte)'A', (byte)'S', 0x0D, 0x0A, 0x1A, 0x0A];
        magic.CopyTo(header, 0);
        BinaryPrimitives.WriteUInt16LittleEndian(header.AsSpan(8), (ushort)MachineSnapshot.FormatVersion); // version
        BinaryPrimitives.WriteUInt16LittleEndian(header.AsSpan(10), HeaderSize);
        header[12] = 1; // zlib
        header[13] = 1; // SHA-256
        BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(ConfigLengthAt), (uint)config.Length);
        BinaryPrimitives.WriteInt64LittleEndian(header.AsSpan(BodyLengthAt), declaredBodyLength ?? body.Length);
        BinaryPrimitives.WriteInt64LittleEndian(header.AsSpan(CompressedLengthAt), bodyBytes.Length);
        SHA256.HashData(bodyBytes).CopyTo(header, BodyChecksumAt);
        SHA256.HashData([.. header.AsSpan(0, HeaderChecksumAt), .. config]).CopyTo(header, HeaderChecksumAt);
        return [.. header, .. config, .. bodyBytes];
    }

    /// <summary>
    /// The layout above (header offsets, what each checksum covers) is the writer's: a snapshot
    /// signed by it restores the machine. (Its bytes may differ: zlib's output depends on how the
    /// input was cut into writes.)
    /// </summary>
    [Fact]
    public void TheTestsOwnSigning_FollowsTheFormat()
    {
        var snapshot = Snapshot(Busy());

        Assert.Equal(snapshot, Snapshot(Restore(Signed(ConfigOf(snapshot), BodyOf(snapshot)))));
    }

    [Fact]
    public void AConfigurationThatDoesNotValidate_IsInconsistent()
    {
        var snapshot = Snapshot(Busy());
        var config = MachineConfig.SingleNode(0, 0, new ZoneConfig { Name = "DMA32", StartPfn = 4096, Pages = 4096 }, new ZoneConfig { Name = "Normal", StartPfn = 16384, Pages = 8192 });

        var e = Refused(Signed(SnapshotConfig.Encode(config), BodyOf(snapshot)));

        Assert.Equal(SnapshotProblem.Inconsistent, e.Problem);
        Assert.Equal("the snapshot is inconsistent: its machine configuration does not validate: Cpus must be 1..1024, not 0..", e.Message);
    }

    [Fact]
    public void AConfigurationOfAnotherMachine_IsInconsistentWithTheBody()
    {
        var snapshot = Snapshot(Busy());
        var config = MachineConfig.SingleNode(2, null, new ZoneConfig { Name = "DMA32", StartPfn = 4096, Pages = 4096 }, new ZoneConfig { Name = "Normal", StartPfn = 16384, Pages = 4096 });

        var e = Refused(Signed(SnapshotConfig.Encode(config), BodyOf(snapshot)));

        Assert.True(e.Problem is SnapshotProblem.Inconsistent or SnapshotProblem.Malformed, e.Message);
    }

    /// <summary>
    /// The bound Read holds a header's body length to covers what Write writes where it is largest:
    /// many cpus, memcgs, and as many listed blocks as can be (every other page free, on the buddy
    /// and on pcp lists).
    /// </summary>
    [Fact]
    public void TheBodyBound_CoversTheLargestBodies()
    {
        var config = MachineConfig.SingleNode(8, 0, new ZoneConfig { Name = "DMA", StartPfn = 1, Pages = 4095 }, new ZoneConfig { Name = "Normal", StartPfn = 4096, Pages = 8192 });
        config.Memcgs = [.. Enumerable.Range(0, 50).Select(i => new MemcgConfig { Name = $"m{i}" })];
        var m = new Machine(config);
        foreach (var zone in m.Zones)
        {
            var taken = new List<long>();
            while (m.AllocPages(zone, 0, Gfp.Kernel | GfpFlags.MemAlloc | GfpFlags.ThisNode | GfpFlags.NoRetry, 0) is { IsSuccess: true } r && r.Value.Zone == zone)
            {
                taken.Add(r.Value.Pfn);
            }
            foreach (var pfn in taken.Where(p => p % 2 == 0))
            {
                zone.FreePages(pfn, 0, (int)(pfn / 2 % 8)); // some stay on pcp lists, the rest drain to the buddy
            }
        }
        m.AssertConsistent();
        var snapshot = Snapshot(m);

        var body = BinaryPrimitives.ReadInt64LittleEndian(snapshot.AsSpan(BodyLengthAt));

        Assert.InRange(body, 1, SnapshotBounds.MaxBodyLength(config));
        Assert.Equal(snapshot, Snapshot(Restore(snapshot)));
    }

    [Fact]
    public void ACallerMayRefuseTheConfiguration_BeforeAnythingIsAllocated()
    {
        var snapshot = Snapshot(Busy());
        var seen = 0L;

        var e = Assert.Throws<SnapshotException>(() => MachineSnapshot.Read(new MemoryStream(snapshot), acceptConfig: c =>
        {
            seen = c.StateBytes();
            return "the service serves machines of at most 1 MiB of page state.";
        }));

        Assert.Equal(SnapshotProblem.Refused, e.Problem);
        Assert.Equal("the snapshot's machine is refused: the service serves machines of at most 1 MiB of page state.", e.Message);
        Assert.Equal(12288 * 16, seen); // 15 bytes of page state a page, and the pageblock share
    }

    /// <summary>The PAGE section's refcount array of the first zone (DMA32, whose pfn 4096 heads a free block at boot).</summary>
    private static int FirstRefcountAt(byte[] body)
    {
        var at = body.AsSpan().IndexOf("PAGE"u8);
        Assert.True(at > 0);
        return at + 4;
    }

    [Fact]
    public void CountersThatDoNotMatchThePages_AreInconsistent()
    {
        var m = Busy();
        var dma32 = m.FindZone("DMA32")!;
        var free = Array.FindIndex(dma32.Flags, f => f == (byte)PageFlags.Buddy);
        var snapshot = Snapshot(m);
        var body = BodyOf(snapshot);
        BinaryPrimitives.WriteInt32LittleEndian(body.AsSpan(FirstRefcountAt(body) + (4 * free)), 5); // a free page with a reference

        var e = Refused(Signed(ConfigOf(snapshot), body));

        Assert.Equal(SnapshotProblem.Inconsistent, e.Problem);
        Assert.StartsWith("the snapshot is inconsistent: ", e.Message, StringComparison.Ordinal);
        Assert.Contains($"DMA32: free pfn 0x{4096 + free:x} has refcount 5", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AChargeOnAFreePage_IsInconsistent()
    {
        var config = MachineConfig.SingleNode(1, 0, new ZoneConfig { Name = "Normal", StartPfn = 0x100000, Pages = 8192 });
        config.Memcgs = [new MemcgConfig { Name = "a" }];
        var m = new Machine(config);
        Assert.True(m.AllocPages(m.Normal(), 3, Gfp.KernelAccount, 0, m.FindMemcg("a")).IsSuccess);
        var free = Array.FindLastIndex(m.Normal().Flags, f => f == (byte)PageFlags.Buddy);
        var snapshot = Snapshot(m);
        var body = BodyOf(snapshot);
        var ids = FirstRefcountAt(body) + (8192 * (4 + 1 + 1)); // past the refcounts, flags and orders
        BinaryPrimitives.WriteUInt16LittleEndian(body.AsSpan(ids + (2 * free)), 1);

        var e = Refused(Signed(ConfigOf(snapshot), body));

        Assert.Equal(SnapshotProblem.Inconsistent, e.Problem);
        Assert.Contains($"Normal: pfn 0x{0x100000 + free:x} is charged to memcg a but not in use (flags Buddy)", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AnOrderAboveMaxPageOrder_IsRefusedBeforeAnyWalkUsesIt()
    {
        var snapshot = Snapshot(Busy());
        var body = BodyOf(snapshot);
        var orders = FirstRefcountAt(body) + (4096 * 4) + 4096; // past DMA32's refcounts and flags
        body[orders + 17] = 200;

        var e = Refused(Signed(ConfigOf(snapshot), body));

        Assert.Equal(SnapshotProblem.Malformed, e.Problem);
        Assert.Equal("the snapshot is malformed: pfn 0x1011 has order 200, above MAX_PAGE_ORDER 10.", e.Message);
    }

    [Fact]
    public void AListThatNamesAPageTwice_IsRefused()
    {
        var m = TestMachines.Small(cpus: 1);
        var a = m.Alloc("DMA32", 0);
        var b = m.Alloc("DMA32", 0);
        m.FindZone("DMA32")!.FreePages(a.Pfn, 0, 0);
        m.FindZone("DMA32")!.FreePages(b.Pfn, 0, 0); // two blocks on cpu 0's order-0 Unmovable pcp list
        var snapshot = Snapshot(m);
        var body = BodyOf(snapshot);
        // The list's first heads, each as its distance from the one before: b, then a - b; a
        // distance of 0 names b again.
        var first = BitConverter.GetBytes((int)(b.Pfn - 4096));
        var second = BitConverter.GetBytes((int)(a.Pfn - b.Pfn));
        var pcps = body.AsSpan().IndexOf("PCPS"u8);
        var at = body.AsSpan(pcps).IndexOf([.. first, .. second]) + pcps;
        Assert.True(at > pcps);
        BitConverter.GetBytes(0).CopyTo(body, at + 4);

        var e = Refused(Signed(ConfigOf(snapshot), body));

        Assert.Equal(SnapshotProblem.Inconsistent, e.Problem);
        Assert.Equal($"the snapshot is inconsistent: zone DMA32's pcp of cpu 0's list 0 names pfn 0x{b.Pfn:x}, which is already on a list.", e.Message);
    }

    [Fact]
    public void ABodyLongerThanDeclared_StopsAtTheDeclaredLength()
    {
        var snapshot = Snapshot(Busy());
        var body = BodyOf(snapshot);
        // A bomb: 32 MiB of zeros after the body, compressed to a few KiB (within what the header
        // may declare for a body of this length; more is refused before decompressing).
        var bomb = new byte[body.Length + (32 << 20)];
        body.CopyTo(bomb, 0);

        var watch = System.Diagnostics.Stopwatch.StartNew();
        var e = Refused(Signed(ConfigOf(snapshot), bomb, declaredBodyLength: body.Length, CompressionLevel.SmallestSize));

        Assert.Equal(SnapshotProblem.Malformed, e.Problem);
        Assert.Equal($"the snapshot is malformed: the body holds more than the {body.Length} bytes declared.", e.Message);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(5), $"{watch.Elapsed}: the reader decompressed the bomb");
    }

    [Fact]
    public void AHeaderDeclaringMoreThanTheMachineCanHold_IsRefusedBeforeAllocating()
    {
        var snapshot = Snapshot(Busy());

        var e = Refused(Signed(ConfigOf(snapshot), BodyOf(snapshot), declaredBodyLength: 1L << 40));

        Assert.Equal(SnapshotProblem.Malformed, e.Problem);
        Assert.StartsWith("the snapshot is malformed: its header declares a body of 1099511627776 bytes", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TuningOtherThanTheConfigurations_IsInconsistent()
    {
        var snapshot = Snapshot(Busy());
        var body = BodyOf(snapshot);
        // The first ZONE section: tag, node, type, start pfn, pages, cpus, then the min watermark.
        var zone = body.AsSpan().IndexOf("ZONE"u8);
        var min = zone + 4 + 4 + 1 + 8 + 4 + 4;
        BinaryPrimitives.WriteInt64LittleEndian(body.AsSpan(min), BinaryPrimitives.ReadInt64LittleEndian(body.AsSpan(min)) + 1);

        var e = Refused(Signed(ConfigOf(snapshot), body));

        Assert.Equal(SnapshotProblem.Inconsistent, e.Problem);
        Assert.StartsWith("the snapshot is inconsistent: zone DMA32's watermarks (min ", e.Message, StringComparison.Ordinal);
    }
}
