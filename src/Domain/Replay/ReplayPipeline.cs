using System.Threading.Channels;

namespace PageAlloc.Domain.Replay;

/// <summary>
/// A replay on two threads: one reads the trace (decompressing it, for gzip) and parses its lines,
/// the other simulates them, in the order they were read, on batches of parsed lines handed over
/// through a channel. Parsing and simulating take about as long as each other, so on two cores a
/// replay takes about half as long; the outcome is the same as reading line by line, since the
/// simulation sees the same lines in the same order, and a refusal of the reader (a bound passed,
/// bad gzip, cancellation) is thrown after every line before it was simulated, as it was.
/// </summary>
/// <remarks>
/// Memory stays bounded: <see cref="Batches"/> batches of <see cref="BatchLines"/> lines exist,
/// handed back and forth, and the channel of full ones holds all of them, so the reading side
/// never waits to hand one over and cannot run further ahead.
/// </remarks>
internal sealed class ReplayPipeline(TraceReplayer replayer, BoundedLineReader lines)
{
    private const int BatchLines = 4096;
    private const int Batches = 4;

    private sealed class Batch
    {
        public readonly TraceReplayer.ParsedLine[] Lines = new TraceReplayer.ParsedLine[BatchLines];
        public int Count;
    }

    private readonly Channel<Batch> _full = Channel.CreateBounded<Batch>(new BoundedChannelOptions(Batches) { SingleReader = true, SingleWriter = true });
    private readonly Channel<Batch> _empty = Channel.CreateBounded<Batch>(new BoundedChannelOptions(Batches) { SingleReader = true, SingleWriter = true });

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        for (var i = 0; i < Batches; i++)
        {
            _empty.Writer.TryWrite(new Batch());
        }
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var reading = Task.Run(() => ReadAsync(stop.Token), CancellationToken.None);
        try
        {
            await foreach (var batch in _full.Reader.ReadAllAsync(CancellationToken.None))
            {
                for (var i = 0; i < batch.Count; i++)
                {
                    replayer.Apply(batch.Lines[i]);
                }
                Array.Clear(batch.Lines, 0, batch.Count);
                batch.Count = 0;
                _empty.Writer.TryWrite(batch);
            }
        }
        catch
        {
            // The simulation failed (or a snapshot's callback threw): stop the reading side before going.
            await stop.CancelAsync();
            _empty.Writer.TryComplete();
            await reading.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            throw;
        }
        await reading; // the reader's refusal, if any, after every line read before it was simulated
    }

    private async Task ReadAsync(CancellationToken cancellationToken)
    {
        Batch? batch = null;
        try
        {
            batch = await _empty.Reader.ReadAsync(cancellationToken);
            while (await lines.FillAsync(cancellationToken))
            {
                while (Parse(batch))
                {
                    _full.Writer.TryWrite(batch); // never full: it has room for every batch there is
                    batch = null;
                    batch = await _empty.Reader.ReadAsync(cancellationToken);
                }
            }
        }
        finally
        {
            // The lines parsed before the end, or before the reader refused, are simulated too.
            if (batch is { Count: > 0 })
            {
                _full.Writer.TryWrite(batch);
            }
            _full.Writer.TryComplete();
        }
    }

    /// <summary>Parses the lines the reader's buffer holds into the batch; true when the batch is full first.</summary>
    private bool Parse(Batch batch)
    {
        while (batch.Count < BatchLines)
        {
            if (!lines.TryReadLine(out var line))
            {
                return false;
            }
            batch.Lines[batch.Count++] = replayer.Parse(line);
        }
        return true;
    }
}
