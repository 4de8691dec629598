using System.IO.Compression;
using System.Security.Cryptography;
using PageAlloc.Domain.Allocator;
using PageAlloc.Domain.Model;
using PageAlloc.Domain.Tracing;

namespace PageAlloc.Domain.Snapshots;

/// <summary>
/// A machine's whole state as one versioned, checksummed, compressed binary, and the machine it
/// restores (docs/snapshot-format.md). A snapshot holds every page's refcount, flags, order and
/// memcg charge; the order of every free list and of every cpu's pcp lists; every counter, tuning
/// value and zone flag; the lock statistics; the pageblock migratetypes; the memcgs;
/// fail_page_alloc with its random generator's state; and the machine's own configuration. It does
/// not hold tracepoint listeners, nor the "current cpu" of any thread. A restored machine behaves
/// exactly as the original would from the moment it was written.
/// </summary>
public static class MachineSnapshot
{
    /// <summary>The format version this build writes, and the only one it reads.</summary>
    public const int FormatVersion = SnapshotHeader.FormatVersion;

    /// <summary>
    /// Writes <paramref name="machine"/>'s snapshot to <paramref name="output"/> (which need not
    /// seek: the compressed body is collected first, then header, configuration and body are written
    /// in one pass). The caller keeps page calls off the machine while it runs (the service holds a
    /// per-machine gate), and Write assumes it: nothing is locked, since the lock statistics being
    /// written would count the write's own locking. A page call running meanwhile would give a torn
    /// snapshot (which Read then refuses as inconsistent); readers such as <see cref="Machine.Stats"/>
    /// may run, as they change only lock statistics. The machine is not changed.
    /// </summary>
    public static void Write(Machine machine, Stream output) => Write(machine, output, FormatVersion);

    /// <summary>
    /// Writes the snapshot in format <paramref name="version"/>: this build's, or version 1 (no LRUS
    /// sections) for a machine without LRU pages, so that tests can check that this build still
    /// reads what the one before wrote.
    /// </summary>
    internal static void Write(Machine machine, Stream output, ushort version)
    {
        ArgumentNullException.ThrowIfNull(machine);
        if (version != FormatVersion && (version != 1 || machine.Zones.Any(z => z.HasLruPages)))
        {
            throw new ArgumentOutOfRangeException(nameof(version), version, "only this build's version, or version 1 for a machine without LRU pages");
        }
        ArgumentNullException.ThrowIfNull(output);
        var config = SnapshotConfig.Encode(machine.Config, version);
        using var compressed = new ChunkedBuffer();
        long bodyLength;
        using (var zlib = new ZLibStream(compressed, CompressionLevel.Fastest, leaveOpen: true))
        {
            var w = new SnapshotWriter(zlib);
            MachineSections.Write(machine, w, withLru: version >= 2);
            w.Flush();
            bodyLength = w.Position;
        }
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var segment in compressed.Segments())
        {
            hash.AppendData(segment.Span);
        }
        SnapshotHeader.Write(output, config, bodyLength, compressed.Length, hash.GetHashAndReset(), version);
        foreach (var segment in compressed.Segments())
        {
            output.Write(segment.Span);
        }
    }

    /// <summary>
    /// Restores the machine a snapshot holds, with <paramref name="tracepoints"/> (or tracepoints of
    /// its own), or throws a <see cref="SnapshotException"/> that says what is wrong and builds
    /// nothing: another format version, not a snapshot, truncated, damaged (a checksum that does not
    /// match), malformed, or inconsistent (a configuration that does not validate, counters that do
    /// not match the pages, lists that do not add up). <paramref name="acceptConfig"/>, when given,
    /// sees the snapshot's configuration before anything is allocated for it and may refuse it
    /// (return the reason; null accepts): the service's own limits on machine size, say.
    /// <para>What it may allocate is bounded by that configuration: the header's lengths are checked
    /// against what the configuration's machine can hold before any allocation, and decompression
    /// stops at the length the header declares.</para>
    /// </summary>
    /// <summary>
    /// The machine configuration of a snapshot, from its header alone (nothing of the machine is
    /// allocated): what a service checks its limits against before it reads the rest.
    /// </summary>
    public static MachineConfig ReadConfig(Stream input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var config = ReadHeaderConfig(SnapshotHeader.Read(input));
        if (config.Validate() is { Count: > 0 } problems)
        {
            throw SnapshotFailures.Inconsistent($"its machine configuration does not validate: {string.Join(" ", problems)}");
        }
        return config;
    }

    private static MachineConfig ReadHeaderConfig(SnapshotHeader header) => SnapshotConfig.Decode(header.Config, header.Version);

    public static Machine Read(Stream input, Tracepoints? tracepoints = null, Func<MachineConfig, string?>? acceptConfig = null)
    {
        ArgumentNullException.ThrowIfNull(input);
        var header = SnapshotHeader.Read(input);
        var config = ReadHeaderConfig(header);
        if (config.Validate() is { Count: > 0 } problems)
        {
            throw SnapshotFailures.Inconsistent($"its machine configuration does not validate: {string.Join(" ", problems)}");
        }
        if (acceptConfig?.Invoke(config) is { } refusal)
        {
            throw new SnapshotException(SnapshotProblem.Refused, $"the snapshot's machine is refused: {refusal}");
        }
        var maxBody = SnapshotBounds.MaxBodyLength(config);
        if (header.BodyLength > maxBody || header.CompressedLength > SnapshotBounds.MaxCompressedLength(header.BodyLength))
        {
            throw SnapshotFailures.Malformed(
                $"its header declares a body of {header.BodyLength} bytes ({header.CompressedLength} compressed), more than a snapshot of its machine "
                + $"can hold ({maxBody} bytes, {SnapshotBounds.MaxCompressedLength(Math.Min(header.BodyLength, maxBody))} compressed)");
        }

        var machine = Machine.Unbooted(config, tracepoints);
        ZoneLocks[]? locks = null;
        SnapshotException? refused = null;
        using var body = new HashingReadStream(input, header.CompressedLength);
        try
        {
            using var zlib = new ZLibStream(body, CompressionMode.Decompress, leaveOpen: true);
            var r = new SnapshotReader(zlib, header.BodyLength, "the body");
            locks = MachineSections.Read(machine, r, withLru: header.Version >= 2);
            r.ExpectEnd();
        }
        catch (SnapshotException e) when (e.Problem != SnapshotProblem.Truncated)
        {
            refused = e; // damage shows as nonsense: the checksum below decides which it is
        }
        catch (InvalidDataException e)
        {
            refused = new SnapshotException(SnapshotProblem.Malformed, $"the snapshot is malformed: its body does not decompress ({e.Message}).", e);
        }
        body.ReadToEnd();
        if (!body.Checksum().AsSpan().SequenceEqual(header.BodyChecksum))
        {
            throw new SnapshotException(SnapshotProblem.Damaged, "the snapshot is damaged: its body's checksum does not match.");
        }
        if (refused is not null)
        {
            throw refused;
        }
        if (input.ReadByte() >= 0)
        {
            throw SnapshotFailures.Malformed($"bytes follow the end of its body (at byte {SnapshotHeader.Size + header.Config.Length + header.CompressedLength})");
        }
        if (machine.CheckInvariants() is { Count: > 0 } inconsistent)
        {
            throw SnapshotFailures.Inconsistent(
                $"{inconsistent.Count}{(inconsistent.Count >= 100 ? " or more" : "")} problems, the first: {string.Join("; ", inconsistent.Take(5))}");
        }
        for (var i = 0; i < locks!.Length; i++)
        {
            machine.Zones[i].RestoreLocks(locks[i]);
        }
        return machine;
    }
}
