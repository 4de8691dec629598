namespace PageAlloc.Domain.Snapshots;

/// <summary>
/// Where <see cref="MachineSnapshot.Write"/> collects the compressed body before the header that
/// declares its length and checksum: appended in chunks of 1 MiB, so it has no 2 GiB limit and
/// never copies what it holds to grow. Only bytes written to it are ever read back.
/// </summary>
internal sealed class ChunkedBuffer : Stream
{
    private const int ChunkSize = 1 << 20;
    private readonly List<byte[]> _chunks = [];
    private int _lastUsed = ChunkSize;
    private long _length;

    public override bool CanRead => false;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => _length;

    public override long Position
    {
        get => _length;
        set => throw new NotSupportedException();
    }

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        while (buffer.Length > 0)
        {
            if (_lastUsed == ChunkSize)
            {
                _chunks.Add(GC.AllocateUninitializedArray<byte>(ChunkSize)); // each byte is written before it is read
                _lastUsed = 0;
            }
            var n = Math.Min(buffer.Length, ChunkSize - _lastUsed);
            buffer[..n].CopyTo(_chunks[^1].AsSpan(_lastUsed));
            _lastUsed += n;
            _length += n;
            buffer = buffer[n..];
        }
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void WriteByte(byte value) => Write([value]);

    /// <summary>The bytes written, in order, chunk by chunk.</summary>
    public IEnumerable<ReadOnlyMemory<byte>> Segments()
    {
        for (var i = 0; i < _chunks.Count; i++)
        {
            yield return _chunks[i].AsMemory(0, i == _chunks.Count - 1 ? _lastUsed : ChunkSize);
        }
    }

    public override void Flush()
    {
    }

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();
}
