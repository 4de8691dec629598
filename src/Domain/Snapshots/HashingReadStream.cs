using System.Security.Cryptography;

namespace PageAlloc.Domain.Snapshots;

/// <summary>
/// The compressed body as the decompressor reads it: no more than the length the header declares,
/// hashed as it passes, so that the checksum is known when the body has been read, without holding
/// the compressed bytes. An input that ends early is a truncated snapshot.
/// </summary>
internal sealed class HashingReadStream : Stream
{
    private readonly Stream _input;
    private readonly long _length;
    private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private long _read;

    public HashingReadStream(Stream input, long length)
    {
        _input = input;
        _length = length;
    }

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => _length;

    public override long Position
    {
        get => _read;
        set => throw new NotSupportedException();
    }

    public override int Read(Span<byte> buffer)
    {
        var room = (int)Math.Min(buffer.Length, _length - _read);
        if (room == 0)
        {
            return 0;
        }
        var n = _input.Read(buffer[..room]);
        if (n == 0)
        {
            throw new SnapshotException(SnapshotProblem.Truncated,
                $"the snapshot is truncated: its compressed body ends after {_read} of the {_length} bytes its header declares.");
        }
        _hash.AppendData(buffer[..n]);
        _read += n;
        return n;
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    /// <summary>Reads and hashes what the decompressor left of the declared length (a refused body is still checked for damage).</summary>
    public void ReadToEnd()
    {
        var scratch = new byte[1 << 16];
        while (Read(scratch) > 0)
        {
        }
    }

    /// <summary>The SHA-256 of every byte read; call once, after <see cref="ReadToEnd"/>.</summary>
    public byte[] Checksum() => _hash.GetHashAndReset();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _hash.Dispose();
        }
        base.Dispose(disposing);
    }

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
