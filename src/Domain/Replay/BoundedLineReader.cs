using System.Text;

namespace PageAlloc.Domain.Replay;

/// <summary>
/// The bounds of a text input read line by line: the most bytes it may hold (after decompression,
/// for gzip) and the longest line, each with the name of what sets it ("Limits:BodyLineBytes",
/// "--max-line-bytes"), so that a refusal names it.
/// </summary>
public sealed record TextBounds(long MaxBytes, int MaxLineBytes, string MaxBytesName, string MaxLineBytesName)
{
    /// <summary>POST /replay's defaults: 4 GiB of text, lines of at most 64 KiB.</summary>
    public static TextBounds Default { get; } = new(4L << 30, 64 << 10, "4 GiB", "64 KiB");
}

/// <summary>A text input passed one of its <see cref="TextBounds"/>: it was not read further.</summary>
public sealed class TextTooLargeException(string limit, long value, string message) : IOException(message)
{
    /// <summary>The name of the bound passed (Limits:BodyLineBytes).</summary>
    public string Limit { get; } = limit;

    /// <summary>Its value, in bytes.</summary>
    public long Value { get; } = value;
}

/// <summary>
/// Reads UTF-8 lines from a stream without ever holding more than one line of at most
/// <see cref="TextBounds.MaxLineBytes"/> (and its read buffer), and without reading more than
/// <see cref="TextBounds.MaxBytes"/>: past either it throws <see cref="TextTooLargeException"/>.
/// A line ends at '\n' (a '\r' before it is dropped); a UTF-8 character never holds the byte '\n',
/// so lines are split before they are decoded.
/// </summary>
public sealed class BoundedLineReader : IDisposable
{
    private const int ReadSize = 64 << 10;

    private readonly Stream _stream;
    private readonly TextBounds _bounds;
    private readonly byte[] _buffer;
    private int _start;
    private int _end;
    private long _read;
    private bool _eof;

    public BoundedLineReader(Stream stream, TextBounds bounds)
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
            if (NextLine(out var start, out var length))
            {
                return Encoding.UTF8.GetString(_buffer, start, length);
            }
            if (!await FillAsync(cancellationToken))
            {
                return null;
            }
        }
    }

    /// <summary>
    /// The next line as UTF-8 bytes (a '\r' before its '\n' dropped) when the buffer holds it whole,
    /// without decoding or copying it: it stays valid until the next call. False when the buffer
    /// holds no whole line: <see cref="FillAsync"/> reads more, and says when the input has ended.
    /// A replay reads a trace so, without a string per line:
    /// <c>while (await reader.FillAsync(ct)) { while (reader.TryReadLine(out var line)) { ... } }</c>.
    /// The bounds are checked in the same order as <see cref="ReadLineAsync"/> checks them.
    /// </summary>
    public bool TryReadLine(out ReadOnlySpan<byte> line)
    {
        if (NextLine(out var start, out var length))
        {
            line = _buffer.AsSpan(start, length);
            return true;
        }
        line = default;
        return false;
    }

    /// <summary>
    /// Reads more of the stream into the buffer; false once the input has ended and every line of it
    /// was taken. Past <see cref="TextBounds.MaxBytes"/>, <see cref="TextTooLargeException"/>.
    /// </summary>
    public async ValueTask<bool> FillAsync(CancellationToken cancellationToken = default)
    {
        if (_eof)
        {
            return _start < _end;
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
            return true;
        }
        _read += n;
        if (_read > _bounds.MaxBytes)
        {
            throw new TextTooLargeException(_bounds.MaxBytesName, _bounds.MaxBytes,
                $"The text is longer than {_bounds.MaxBytesName}, {_bounds.MaxBytes} bytes (after decompression, for gzip); it was not read further.");
        }
        _end += n;
        return true;
    }

    /// <summary>
    /// Where the next line is in the buffer (the line taken), when the buffer holds it whole: ended by
    /// '\n', or the last one at the end of the input. False when more must be read first, or nothing is left.
    /// </summary>
    private bool NextLine(out int start, out int length)
    {
        var newline = _buffer.AsSpan(_start, _end - _start).IndexOf((byte)'\n');
        if (newline >= 0)
        {
            (start, length) = Take(newline, 1);
            return true;
        }
        if (_end - _start > _bounds.MaxLineBytes)
        {
            throw LineTooLong();
        }
        if (_eof && _start < _end)
        {
            (start, length) = Take(_end - _start, 0);
            return true;
        }
        (start, length) = (0, 0);
        return false;
    }

    /// <summary>The line of <paramref name="length"/> bytes at the start, taken with its ending of <paramref name="ending"/> bytes: where its text is.</summary>
    private (int Start, int Length) Take(int length, int ending)
    {
        if (length > _bounds.MaxLineBytes + (length > 0 && _buffer[_start + length - 1] == '\r' ? 1 : 0))
        {
            throw LineTooLong();
        }
        var text = length > 0 && _buffer[_start + length - 1] == '\r' ? length - 1 : length;
        var start = _start;
        _start += length + ending;
        return (start, text);
    }

    private TextTooLargeException LineTooLong() => new(_bounds.MaxLineBytesName, _bounds.MaxLineBytes,
        $"A line is longer than {_bounds.MaxLineBytesName}, {_bounds.MaxLineBytes} bytes (a kmem event's line is about 200, a /proc row under 200); it was not read further.");

    public void Dispose() => _stream.Dispose();
}
