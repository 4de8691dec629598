using System.Buffers.Binary;
using System.Security.Cryptography;

namespace PageAlloc.Domain.Snapshots;

/// <summary>
/// The fixed header of a snapshot (docs/snapshot-format.md): magic, format version, the
/// compression and checksum it uses, the lengths of the configuration section and of the body
/// (uncompressed and compressed), the body's SHA-256, and a SHA-256 over the header and the
/// configuration section. Magic and version keep their places in every version, so that any
/// snapshot is told apart by version before anything else is read.
/// </summary>
internal sealed record SnapshotHeader(byte[] Config, long BodyLength, long CompressedLength, byte[] BodyChecksum, ushort Version = SnapshotHeader.FormatVersion)
{
    /// <summary>0x89 "PAS" CR LF 0x1A LF: PNG's scheme, so that a text-mode transfer (7-bit, CRLF or LF conversion) shows as a bad magic.</summary>
    public static ReadOnlySpan<byte> Magic => [0x89, (byte)'P', (byte)'A', (byte)'S', 0x0D, 0x0A, 0x1A, 0x0A];

    /// <summary>
    /// The format version this build writes. Version 2 added each zone's LRUS section (the LRU
    /// lists); a version 1 snapshot is read as one whose zones have no LRU page, which is what it
    /// holds. Any other version is refused.
    /// </summary>
    public const ushort FormatVersion = 2;

    /// <summary>The oldest version this build reads.</summary>
    public const ushort OldestReadableVersion = 1;

    public const int Size = 104;

    /// <summary>Compression 1: zlib (RFC 1950) at the fastest level.</summary>
    public const byte CompressionZlib = 1;

    /// <summary>Checksum 1: SHA-256.</summary>
    public const byte ChecksumSha256 = 1;

    private const int VersionOffset = 8, HeaderLengthOffset = 10, CompressionOffset = 12, ChecksumOffset = 13, FlagsOffset = 14,
        ConfigLengthOffset = 16, ReservedOffset = 20, BodyLengthOffset = 24, CompressedLengthOffset = 32,
        BodyChecksumOffset = 40, HeaderChecksumOffset = 72;

    public static void Write(Stream output, byte[] config, long bodyLength, long compressedLength, byte[] bodyChecksum, ushort version = FormatVersion)
    {
        var header = new byte[Size];
        Magic.CopyTo(header);
        BinaryPrimitives.WriteUInt16LittleEndian(header.AsSpan(VersionOffset), version);
        BinaryPrimitives.WriteUInt16LittleEndian(header.AsSpan(HeaderLengthOffset), Size);
        header[CompressionOffset] = CompressionZlib;
        header[ChecksumOffset] = ChecksumSha256;
        BinaryPrimitives.WriteUInt16LittleEndian(header.AsSpan(FlagsOffset), 0);
        BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(ConfigLengthOffset), (uint)config.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(ReservedOffset), 0);
        BinaryPrimitives.WriteInt64LittleEndian(header.AsSpan(BodyLengthOffset), bodyLength);
        BinaryPrimitives.WriteInt64LittleEndian(header.AsSpan(CompressedLengthOffset), compressedLength);
        bodyChecksum.CopyTo(header.AsSpan(BodyChecksumOffset));
        HeaderChecksum(header, config).CopyTo(header.AsSpan(HeaderChecksumOffset));
        output.Write(header);
        output.Write(config);
    }

    /// <summary>
    /// Reads and checks the header and the configuration section, in the order that gives each
    /// refusal its true reason: the magic, then the version (a snapshot of another version may lay
    /// out everything after it differently), then the lengths and the header's checksum, then the
    /// fields it covers.
    /// </summary>
    public static SnapshotHeader Read(Stream input)
    {
        var header = new byte[Size];
        var got = ReadUpTo(input, header);
        var prefix = Math.Min(got, Magic.Length);
        if (!header.AsSpan(0, prefix).SequenceEqual(Magic[..prefix]) || got == 0)
        {
            throw new SnapshotException(SnapshotProblem.NotASnapshot, got == 0
                ? "this is not a PageAlloc snapshot: it is empty."
                : $"this is not a PageAlloc snapshot: it starts with {Convert.ToHexString(header, 0, prefix)}, not the snapshot magic {Convert.ToHexString(Magic)}.");
        }
        if (got < HeaderLengthOffset)
        {
            throw Truncated($"it ends after {got} bytes, inside its {Size}-byte header");
        }
        var version = BinaryPrimitives.ReadUInt16LittleEndian(header.AsSpan(VersionOffset));
        if (version is < OldestReadableVersion or > FormatVersion)
        {
            throw new SnapshotException(SnapshotProblem.UnsupportedVersion,
                $"snapshot format version {version} is not one this service reads ({OldestReadableVersion}..{FormatVersion}): a snapshot of another version is refused, not converted.");
        }
        if (got < Size)
        {
            throw Truncated($"it ends after {got} bytes, inside its {Size}-byte header");
        }
        var configLength = BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(ConfigLengthOffset));
        if (configLength > SnapshotConfig.MaxBytes)
        {
            // Not yet covered by a checksum that could be checked: a length this large is damage.
            throw new SnapshotException(SnapshotProblem.Damaged,
                $"the snapshot is damaged: its header declares a configuration section of {configLength} bytes, more than the {SnapshotConfig.MaxBytes} any snapshot has.");
        }
        var config = new byte[configLength];
        var configGot = ReadUpTo(input, config);
        if (configGot < config.Length)
        {
            throw Truncated($"it ends after {Size + configGot} bytes, inside its configuration section of {configLength} bytes");
        }
        if (!HeaderChecksum(header, config).AsSpan().SequenceEqual(header.AsSpan(HeaderChecksumOffset, 32)))
        {
            throw new SnapshotException(SnapshotProblem.Damaged, "the snapshot is damaged: the checksum of its header and configuration does not match.");
        }
        var headerLength = BinaryPrimitives.ReadUInt16LittleEndian(header.AsSpan(HeaderLengthOffset));
        var flags = BinaryPrimitives.ReadUInt16LittleEndian(header.AsSpan(FlagsOffset));
        var reserved = BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(ReservedOffset));
        var bodyLength = BinaryPrimitives.ReadInt64LittleEndian(header.AsSpan(BodyLengthOffset));
        var compressedLength = BinaryPrimitives.ReadInt64LittleEndian(header.AsSpan(CompressedLengthOffset));
        string? problem =
            headerLength != Size ? $"its header length is {headerLength}, not version {FormatVersion}'s {Size}"
            : header[CompressionOffset] != CompressionZlib ? $"it uses compression {header[CompressionOffset]}; version {FormatVersion} has only 1 (zlib)"
            : header[ChecksumOffset] != ChecksumSha256 ? $"it uses checksum {header[ChecksumOffset]}; version {FormatVersion} has only 1 (SHA-256)"
            : flags != 0 ? $"it sets header flags 0x{flags:x4}; version {FormatVersion} defines none"
            : reserved != 0 ? $"its reserved header field is 0x{reserved:x8}, not 0"
            : bodyLength < 0 || compressedLength < 0 ? "its header declares a negative length"
            : null;
        if (problem is not null)
        {
            throw new SnapshotException(SnapshotProblem.Malformed, $"the snapshot is malformed: {problem}.");
        }
        return new SnapshotHeader(config, bodyLength, compressedLength, header.AsSpan(BodyChecksumOffset, 32).ToArray(), version);
    }

    /// <summary>SHA-256 of the header's first 72 bytes (everything before this checksum) and the configuration section.</summary>
    private static byte[] HeaderChecksum(byte[] header, byte[] config)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(header, 0, HeaderChecksumOffset);
        hash.AppendData(config);
        return hash.GetHashAndReset();
    }

    private static SnapshotException Truncated(string what) => new(SnapshotProblem.Truncated, $"the snapshot is truncated: {what}.");

    /// <summary>Fills the buffer from the stream, or as much of it as the stream has.</summary>
    private static int ReadUpTo(Stream input, byte[] buffer)
    {
        var total = 0;
        while (total < buffer.Length)
        {
            var n = input.Read(buffer, total, buffer.Length - total);
            if (n == 0)
            {
                break;
            }
            total += n;
        }
        return total;
    }
}
