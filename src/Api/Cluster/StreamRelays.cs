using System.Buffers;
using System.Collections.Concurrent;
using System.IO.Pipelines;
using Microsoft.AspNetCore.Http.Features;

namespace PageAlloc.Api.Cluster;

/// <summary>
/// The answers without end (GET .../events) this silo streams for readers on other silos. The
/// endpoint runs here exactly as for a reader of this silo (its filter, its bounded buffer, its
/// listener limits), writing into a bounded pipe instead of a socket; the reader's silo pulls what
/// was written, one long poll at a time (<see cref="IMachineGrain.ReadStream"/>). A reader that does
/// not keep up fills the pipe, the endpoint's writes wait, and its own buffer then drops events,
/// reports how many and ends the stream: what a full socket does locally. A relay nobody pulled for
/// <see cref="IdleTimeout"/> (the reader's silo went away without a word) is ended.
/// </summary>
public sealed partial class StreamRelays : IDisposable
{
    /// <summary>How long a relay waits for its reader's silo to pull again before it is ended.</summary>
    public static readonly TimeSpan IdleTimeout = TimeSpan.FromSeconds(30);

    /// <summary>How long one pull waits for bytes before answering with none (the reader's silo asks again).</summary>
    public static readonly TimeSpan PullWait = TimeSpan.FromSeconds(1);

    private const int ChunkBytes = 64 * 1024;

    private readonly ConcurrentDictionary<Guid, RelayedStream> _streams = new();
    private readonly TimeProvider _time;
    private readonly ILogger<StreamRelays> _logger;
    private readonly ITimer _sweep;

    public StreamRelays(TimeProvider time, ILogger<StreamRelays> logger)
    {
        _time = time;
        _logger = logger;
        _sweep = time.CreateTimer(_ => EndIdle(), null, IdleTimeout / 3, IdleTimeout / 3);
    }

    /// <summary>Relays open on this silo (a metric of sorts, and what tests look at).</summary>
    public int Open => _streams.Count;

    /// <summary>
    /// Starts <paramref name="run"/> (the endpoint, writing into the relay's body) and answers once
    /// its answer has started or ended: its status and headers, and the id to pull its body by.
    /// </summary>
    public async Task<StreamOpened> OpenAsync(string machine, Func<IHttpResponseBodyFeature, CancellationToken, Action<HttpResponse>, Task<HttpResponse>> run)
    {
        var relay = new RelayedStream(machine, _time.GetTimestamp());
        _streams[relay.Id] = relay;
        _ = Task.Run(async () =>
        {
            try
            {
                var response = await run(relay.Body, relay.Aborted.Token, relay.Bind);
                relay.Started(response); // an answer that wrote nothing starts only now
            }
            catch (Exception failure) when (failure is OperationCanceledException || relay.Aborted.IsCancellationRequested)
            {
                relay.Fail(failure);
            }
            catch (Exception failure)
            {
                LogRelayFailed(_logger, machine, failure);
                relay.Fail(failure);
            }
            finally
            {
                await relay.Pipe.Writer.CompleteAsync();
            }
        });
        try
        {
            var (status, headers) = await relay.Head.Task;
            return new StreamOpened(relay.Id, status, headers, NoMachine: false);
        }
        catch
        {
            End(relay.Id);
            throw;
        }
    }

    /// <summary>
    /// What the endpoint wrote since the last pull, up to 64 KB, waiting up to <see cref="PullWait"/>
    /// for something; Ended when the answer is complete (the relay is gone then).
    /// </summary>
    public async Task<StreamChunk> ReadAsync(Guid id, CancellationToken cancellationToken)
    {
        if (!_streams.TryGetValue(id, out var relay))
        {
            return new StreamChunk([], Ended: true);
        }
        relay.LastPulled = _time.GetTimestamp();
        if (Interlocked.Exchange(ref relay.Reading, 1) == 1)
        {
            return new StreamChunk([], Ended: false); // one pull at a time; the reader's silo asks again
        }
        try
        {
            var reader = relay.Pipe.Reader;
            using var wait = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            wait.CancelAfter(PullWait);
            ReadResult result;
            using (wait.Token.Register(reader.CancelPendingRead))
            {
                result = await reader.ReadAsync(CancellationToken.None);
            }
            var buffer = result.Buffer;
            var take = Math.Min(buffer.Length, ChunkBytes);
            var bytes = buffer.Slice(0, take).ToArray();
            var ended = result.IsCompleted && take == buffer.Length;
            reader.AdvanceTo(buffer.GetPosition(take));
            if (ended)
            {
                End(id);
            }
            return new StreamChunk(bytes, ended);
        }
        finally
        {
            relay.LastPulled = _time.GetTimestamp();
            Volatile.Write(ref relay.Reading, 0);
        }
    }

    /// <summary>The reader went away: the endpoint's stream ends as it would for a client gone.</summary>
    public void End(Guid id)
    {
        if (_streams.TryRemove(id, out var relay))
        {
            relay.Aborted.Cancel();
        }
    }

    /// <summary>The machine's activation is ending here: its relayed streams end (their readers may ask again, and reach its next one).</summary>
    public void EndAll(string machine)
    {
        foreach (var (id, relay) in _streams)
        {
            if (relay.Machine == machine)
            {
                End(id);
            }
        }
    }

    private void EndIdle()
    {
        foreach (var (id, relay) in _streams)
        {
            if (Volatile.Read(ref relay.Reading) == 0 && _time.GetElapsedTime(relay.LastPulled) > IdleTimeout)
            {
                LogRelayIdle(_logger, relay.Machine, IdleTimeout.TotalSeconds);
                End(id);
            }
        }
    }

    public void Dispose()
    {
        _sweep.Dispose();
        foreach (var id in _streams.Keys)
        {
            End(id);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "A relayed stream of machine {Machine} failed")]
    private static partial void LogRelayFailed(ILogger logger, string machine, Exception failure);

    [LoggerMessage(Level = LogLevel.Information, Message = "A relayed stream of machine {Machine} was ended: its reader's silo had not pulled for {Seconds} s")]
    private static partial void LogRelayIdle(ILogger logger, string machine, double seconds);

    /// <summary>One relayed answer: the pipe between the endpoint and the pulls, and how it started.</summary>
    private sealed class RelayedStream
    {
        public RelayedStream(string machine, long now)
        {
            Machine = machine;
            LastPulled = now;
            // Bounded: the endpoint's writes wait past 256 KB unread, as a socket's would.
            Pipe = new Pipe(new PipeOptions(pauseWriterThreshold: 256 * 1024, resumeWriterThreshold: 128 * 1024, useSynchronizationContext: false));
            Body = new RelayBodyFeature(this);
        }

        public Guid Id { get; } = Guid.NewGuid();
        public string Machine { get; }
        public Pipe Pipe { get; }
        public IHttpResponseBodyFeature Body { get; }
        public CancellationTokenSource Aborted { get; } = new();
        public TaskCompletionSource<(int Status, KeyValuePair<string, string>[] Headers)> Head { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public long LastPulled;
        public int Reading;
        private HttpResponse? _response;

        /// <summary>Remembered so the first write can take the status and headers it goes out with.</summary>
        public void Bind(HttpResponse response) => _response = response;

        public void Started(HttpResponse response)
        {
            if (Head.Task.IsCompleted)
            {
                return;
            }
            Head.TrySetResult((response.StatusCode, ForwardedRequestRunner.Travelling(response.Headers)));
        }

        public void FirstWrite()
        {
            if (_response is { } response)
            {
                Started(response);
            }
        }

        public void Fail(Exception failure) => Head.TrySetException(failure);
    }

    /// <summary>The endpoint's response body: the relay's pipe; the first byte or flush fixes the status and headers.</summary>
    private sealed class RelayBodyFeature(RelayedStream relay) : IHttpResponseBodyFeature
    {
        private Stream? _stream;
        private PipeWriter? _writer;

        public Stream Stream => _stream ??= new RelayBodyStream(relay);

        public PipeWriter Writer => _writer ??= PipeWriter.Create(Stream, new StreamPipeWriterOptions(leaveOpen: true));

        public void DisableBuffering()
        {
        }

        public Task StartAsync(CancellationToken cancellationToken = default)
        {
            relay.FirstWrite();
            return Task.CompletedTask;
        }

        public Task SendFileAsync(string path, long offset, long? count, CancellationToken cancellationToken = default) =>
            throw new NotSupportedException("A relayed answer is a stream of events, not a file.");

        public async Task CompleteAsync()
        {
            relay.FirstWrite();
            if (_writer is { } writer)
            {
                await writer.FlushAsync();
            }
        }
    }

    /// <summary>Write-only: each write goes into the pipe and waits while 256 KB are unread.</summary>
    private sealed class RelayBodyStream(RelayedStream relay) : Stream
    {
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            relay.FirstWrite();
            using var both = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, relay.Aborted.Token);
            await relay.Pipe.Writer.WriteAsync(buffer, both.Token);
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer, offset, count, CancellationToken.None).GetAwaiter().GetResult();

        public override Task FlushAsync(CancellationToken cancellationToken)
        {
            relay.FirstWrite();
            return Task.CompletedTask; // every write is flushed into the pipe already
        }

        public override void Flush() => relay.FirstWrite();
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
