using System.Text;
using PageAlloc.Domain.Replay;

namespace PageAlloc.Tests.Unit.Reference;

// BoundedLineReader as it was before issue 27 (a string per line), kept here only, as the reference
// for the lines and the bounds' refusals of the reader that hands out byte spans.
/// <summary>
/// Reads UTF-8 lines from a stream without ever holding more than one line of at most
/// <see cref="TextBounds.MaxLineBytes"/> (and its read buffer), and without reading more than
/// <see cref="TextBounds.MaxBytes"/>: past either it throws <see cref="TextTooLargeException"/>.
/// A line ends at '\n' (a '\r' before it is dropped); a UTF-8 character never holds the byte '\n',
/// so lines are split before they are decoded.
/// </summary>
internal sealed class ReferenceLineReader : IDisposable
{
    private const int ReadSize = 64 << 10;

    private readonly Stream _stream;
    private readonly TextBounds _bounds;
    private readonly byte[] _buffer;
    private int _start;
    private int _end;
    private long _read;
    private bool _eof;

    public ReferenceLineReader(Stream stream, TextBounds bounds)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(bounds.MaxLineBytes, 1);
        _stream = stream;
        _bounds = bounds;
        // A line not yet ended is at most MaxLineBytes long here, so a read always has room.
        _buffer = new byte[bounds.MaxLineBytes + 1 + ReadSize];
    }

    /// <summary>The bytes read from the stream so far.</summary>
    public long BytesRead => _read;

    /// <summary>The next line, or null at the end of the input.</summary>
    public async ValueTask<string?> ReadLineAsync(CancellationToken cancellationToken = default)
    {
        while (true)
        {
            var newline = _buffer.AsSpan(_start, _end - _start).IndexOf((byte)'\n');
            if (newline >= 0)
            {
                return Take(newline, 1);
            }
            if (_end - _start > _bounds.MaxLineBytes)
            {
                throw LineTooLong();
            }
            if (_eof)
            {
                return _start == _end ? null : Take(_end - _start, 0);
            }
            if (_start > 0)
            {
                Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
                _end -= _start;
                _start = 0;
            }
            var n = await _stream.ReadAsync(_buffer.AsMemory(_end, Math.Min(ReadSize, _buffer.Length - _end)), cancellationToken);
            if (n == 0)
            {
                _eof = true;
                continue;
            }
            _read += n;
            if (_read > _bounds.MaxBytes)
            {
                throw new TextTooLargeException(_bounds.MaxBytesName, _bounds.MaxBytes,
                    $"The text is longer than {_bounds.MaxBytesName}, {_bounds.MaxBytes} bytes (after decompression, for gzip); it was not read further.");
            }
            _end += n;
        }
    }

    /// <summary>The line of <paramref name="length"/> bytes at the start, and past its end of <paramref name="ending"/> bytes.</summary>
    private string Take(int length, int ending)
    {
        if (length > _bounds.MaxLineBytes + (length > 0 && _buffer[_start + length - 1] == '\r' ? 1 : 0))
        {
            throw LineTooLong();
        }
        var text = length > 0 && _buffer[_start + length - 1] == '\r' ? length - 1 : length;
        var line = Encoding.UTF8.GetString(_buffer, _start, text);
        _start += length + ending;
        return line;
    }

    private TextTooLargeException LineTooLong() => new(_bounds.MaxLineBytesName, _bounds.MaxLineBytes,
        $"A line is longer than {_bounds.MaxLineBytesName}, {_bounds.MaxLineBytes} bytes (a kmem event's line is about 200, a /proc row under 200); it was not read further.");

    public void Dispose() => _stream.Dispose();
}
