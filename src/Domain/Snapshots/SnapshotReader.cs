using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;

namespace PageAlloc.Domain.Snapshots;

/// <summary>
/// Reads a snapshot's fields little-endian from a stream (the decompressor, or the config section),
/// never past the length the header declares: a body that decompresses to more stops there (a
/// zlib bomb cannot run away), one that ends early is refused. Every refusal says where it happened.
/// </summary>
internal sealed class SnapshotReader
{
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private readonly Stream _source;
    private readonly long _length;
    private readonly string _what;
    private readonly byte[] _buffer = new byte[1 << 16];
    private int _start, _end;
    private long _fetched;

    /// <param name="source">The stream to read.</param>
    /// <param name="length">The bytes it may give: no more are read.</param>
    /// <param name="what">What it is, for messages ("the body", "the configuration section").</param>
    public SnapshotReader(Stream source, long length, string what)
    {
        _source = source;
        _length = length;
        _what = what;
    }

    /// <summary>Bytes handed out so far.</summary>
    public long Position => _fetched - (_end - _start);

    /// <summary>Bytes still to read.</summary>
    public long Remaining => _length - Position;

    public void Section(SnapshotSection expected)
    {
        var at = Position;
        var tag = ReadUInt32();
        if (tag != (uint)expected)
        {
            throw Malformed($"section {SnapshotSections.Name((uint)expected)} was expected at byte {at} of {_what}, not {SnapshotSections.Name(tag)}");
        }
    }

    public byte ReadByte() => Take(1)[0];

    public bool ReadBool(string what)
    {
        var b = ReadByte();
        return b switch
        {
            0 => false,
            1 => true,
            _ => throw Malformed($"{what} is {b}, neither 0 nor 1 (byte {Position - 1} of {_what})"),
        };
    }

    public uint ReadUInt32() => BinaryPrimitives.ReadUInt32LittleEndian(Take(4));

    public int ReadInt32() => BinaryPrimitives.ReadInt32LittleEndian(Take(4));

    public long ReadInt64() => BinaryPrimitives.ReadInt64LittleEndian(Take(8));

    /// <summary>An int that must lie in <paramref name="min"/>..<paramref name="max"/>.</summary>
    public int ReadInt32(string what, long min, long max)
    {
        var value = ReadInt32();
        return value >= min && value <= max ? value
            : throw Malformed($"{what} is {value}, outside {min}..{max} (byte {Position - 4} of {_what})");
    }

    /// <summary>A long that must lie in <paramref name="min"/>..<paramref name="max"/>.</summary>
    public long ReadInt64(string what, long min, long max)
    {
        var value = ReadInt64();
        return value >= min && value <= max ? value
            : throw Malformed($"{what} is {value}, outside {min}..{max} (byte {Position - 8} of {_what})");
    }

    /// <summary>Counters that must not be negative.</summary>
    public void ReadCounters(Span<long> values, string what)
    {
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = ReadInt64($"{what}[{i}]", 0, long.MaxValue);
        }
    }

    /// <summary>A UTF-8 string with its byte length first, no longer than <paramref name="maxBytes"/>.</summary>
    public string ReadString(string what, int maxBytes)
    {
        var length = ReadInt32($"the length of {what}", 0, Math.Min(maxBytes, Remaining));
        var bytes = new byte[length];
        ReadBytes(bytes);
        try
        {
            return StrictUtf8.GetString(bytes);
        }
        catch (DecoderFallbackException e)
        {
            throw new SnapshotException(SnapshotProblem.Malformed, $"the snapshot is malformed: {what} is not UTF-8 ({e.Message}).", e);
        }
    }

    public void ReadBytes(Span<byte> destination)
    {
        if (destination.Length > Remaining)
        {
            throw Malformed($"{_what} ends after {_length} bytes, inside a field of {destination.Length} bytes at byte {Position}");
        }
        var buffered = Math.Min(destination.Length, _end - _start);
        _buffer.AsSpan(_start, buffered).CopyTo(destination);
        _start += buffered;
        destination = destination[buffered..];
        while (destination.Length > 0)
        {
            var n = _source.Read(destination);
            if (n == 0)
            {
                throw EndedEarly();
            }
            _fetched += n;
            destination = destination[n..];
        }
    }

    public void ReadInt32s(Span<int> destination)
    {
        ReadBytes(MemoryMarshal.AsBytes(destination));
        if (!BitConverter.IsLittleEndian)
        {
            BinaryPrimitives.ReverseEndianness(destination, destination);
        }
    }

    public void ReadUInt16s(Span<ushort> destination)
    {
        ReadBytes(MemoryMarshal.AsBytes(destination));
        if (!BitConverter.IsLittleEndian)
        {
            BinaryPrimitives.ReverseEndianness(destination, destination);
        }
    }

    /// <summary>Every declared byte was read, and the stream has nothing more.</summary>
    public void ExpectEnd()
    {
        if (Remaining != 0)
        {
            throw Malformed($"{_what} holds {Remaining} bytes after its last section (of the {_length} declared)");
        }
        Span<byte> one = stackalloc byte[1];
        if (_source.Read(one) != 0)
        {
            throw Malformed($"{_what} holds more than the {_length} bytes declared");
        }
    }

    public static SnapshotException Malformed(string what) => SnapshotFailures.Malformed(what);

    private SnapshotException EndedEarly() => Malformed($"{_what} ends after {_fetched} of the {_length} bytes declared");

    private ReadOnlySpan<byte> Take(int n)
    {
        if (_end - _start < n)
        {
            Fill(n);
        }
        var span = _buffer.AsSpan(_start, n);
        _start += n;
        return span;
    }

    /// <summary>Makes at least n bytes available, reading no further than the declared length.</summary>
    private void Fill(int n)
    {
        if (n > Remaining)
        {
            throw Malformed($"{_what} ends after {_length} bytes, inside a field at byte {Position}");
        }
        var have = _end - _start;
        _buffer.AsSpan(_start, have).CopyTo(_buffer);
        _start = 0;
        _end = have;
        while (_end < n)
        {
            var room = (int)Math.Min(_buffer.Length - _end, _length - _fetched);
            var got = _source.Read(_buffer, _end, room);
            if (got == 0)
            {
                throw EndedEarly();
            }
            _end += got;
            _fetched += got;
        }
    }
}
