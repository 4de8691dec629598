using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;

namespace PageAlloc.Domain.Snapshots;

/// <summary>
/// Writes a snapshot's fields little-endian into a stream (the compressor, or the config section's
/// buffer) through a buffer of its own. Large arrays go to the stream straight from the machine's
/// arrays. Only values the caller passes are written: the buffer's bytes past what was written are
/// never sent.
/// </summary>
internal sealed class SnapshotWriter
{
    private readonly Stream _sink;
    private readonly byte[] _buffer = new byte[1 << 16];
    private int _used;

    public SnapshotWriter(Stream sink) => _sink = sink;

    /// <summary>Bytes written so far (before compression): the body length the header declares.</summary>
    public long Position { get; private set; }

    public void Section(SnapshotSection tag) => WriteUInt32((uint)tag);

    public void WriteByte(byte value) => Reserve(1)[0] = value;

    public void WriteBool(bool value) => WriteByte(value ? (byte)1 : (byte)0);

    public void WriteUInt32(uint value) => BinaryPrimitives.WriteUInt32LittleEndian(Reserve(4), value);

    public void WriteInt32(int value) => BinaryPrimitives.WriteInt32LittleEndian(Reserve(4), value);

    public void WriteInt64(long value) => BinaryPrimitives.WriteInt64LittleEndian(Reserve(8), value);

    public void WriteInt64s(ReadOnlySpan<long> values)
    {
        foreach (var v in values)
        {
            WriteInt64(v);
        }
    }

    /// <summary>A UTF-8 string with its byte length first.</summary>
    public void WriteString(string value)
    {
        var bytes = Encoding.UTF8.GetBytes(value);
        WriteInt32(bytes.Length);
        WriteBytes(bytes);
    }

    public void WriteBytes(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length <= _buffer.Length - _used)
        {
            bytes.CopyTo(_buffer.AsSpan(_used));
            _used += bytes.Length;
            Position += bytes.Length;
            return;
        }
        Flush();
        _sink.Write(bytes);
        Position += bytes.Length;
    }

    /// <summary>An int array as it is in memory on a little-endian machine; converted in chunks on a big-endian one.</summary>
    public void WriteInt32s(ReadOnlySpan<int> values)
    {
        if (BitConverter.IsLittleEndian)
        {
            WriteBytes(MemoryMarshal.AsBytes(values));
            return;
        }
        foreach (var v in values)
        {
            WriteInt32(v);
        }
    }

    /// <inheritdoc cref="WriteInt32s"/>
    public void WriteUInt16s(ReadOnlySpan<ushort> values)
    {
        if (BitConverter.IsLittleEndian)
        {
            WriteBytes(MemoryMarshal.AsBytes(values));
            return;
        }
        foreach (var v in values)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(Reserve(2), v);
        }
    }

    /// <summary>Sends what the buffer holds to the stream.</summary>
    public void Flush()
    {
        if (_used > 0)
        {
            _sink.Write(_buffer, 0, _used);
            _used = 0;
        }
    }

    private Span<byte> Reserve(int n)
    {
        if (_buffer.Length - _used < n)
        {
            Flush();
        }
        var span = _buffer.AsSpan(_used, n);
        _used += n;
        Position += n;
        return span;
    }
}
