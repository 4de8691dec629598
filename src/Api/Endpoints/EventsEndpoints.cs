using PageAlloc.Api.Cluster;
using System.Net.ServerSentEvents;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.Options;
using PageAlloc.Api.Contracts;
using PageAlloc.Api.Infrastructure;
using PageAlloc.Api.Machines;
using PageAlloc.Api.OpenApi;
using PageAlloc.Domain.Model;
using PageAlloc.Domain.Tracing;

namespace PageAlloc.Api.Endpoints;

/// <summary>
/// GET /events: the machine's tracepoints as a live stream, as `perf record -e kmem:*` or ftrace's
/// trace_pipe would show them. Server-Sent Events (event: the tracepoint's name, data: its kernel
/// text, or JSON), or plain lines in perf script's layout. Each stream has its own filter and bounded
/// buffer; a reader that falls behind loses events, is told how many, and its stream ends there
/// (cut off if it does not even read that line within <see cref="StreamStop.CatchUp"/>). Every
/// stream ends at once when the host stops (SIGTERM), so an open stream does not hold the shutdown.
/// </summary>
public static class EventsEndpoints
{
    private static readonly string[] Formats = ["text", "json", "perf-script"];

    public static IEndpointRouteBuilder MapEvents(this IEndpointRouteBuilder app)
    {
        app.MapGet("/events", Stream).WithTags("Events").WithName("StreamEvents").StreamsFromMachineSilo()
            .WithSummary("The kmem tracepoints as a live stream (Server-Sent Events, or perf script lines)")
            .WithDescription("Streams the events the allocator emits from now on, until the client goes away: kmem:mm_page_alloc "
                + "(__alloc_pages()), mm_page_alloc_zone_locked (__rmqueue_smallest()), mm_page_free (free_pages_prepare()), "
                + "mm_page_pcpu_drain (free_pcppages_bulk()), mm_page_alloc_extfrag (__rmqueue_claim()/__rmqueue_steal()), and "
                + "PageAlloc's own pagealloc:range_free_chunk (each chunk a range free hands to the allocator). format=text (default): "
                + "SSE, event is the tracepoint's name, data its TP_printk text; format=json: SSE, data is the event as JSON; "
                + "format=perf-script: text/plain lines as perf script prints them. A stream that falls more than Limits:EventBufferEvents "
                + "behind drops events, says so with an event named lost (data [LOST n EVENTS]) or that line, and ends there. The stream ends after "
                + "`seconds` or `limit` events when given: a browser's fetch, Swagger UI's Try it out among them, shows an answer only once "
                + "it has ended (curl -N shows each event as it comes). It ends too when the service stops. At most Limits:EventListeners "
                + "streams are open at once, and with API keys at most Limits:EventListenersPerKey of one key.")
            .Produces<string>(StatusCodes.Status200OK, "text/event-stream", "text/plain")
            .Answers(200, "The stream: text/event-stream, or text/plain for format=perf-script.")
            .Refuses("A format, event name or order that does not exist, or seconds or limit out of range.", ProblemCatalog.InvalidEventFilter)
            .Refuses("The zone is not one of the machine's (GET /zones lists them).", ProblemCatalog.UnknownZone)
            .Refuses("API keys are configured and the request has none, or an unknown one.", ProblemCatalog.Unauthenticated)
            .Refuses("Limits:EventListeners streams are open already, or Limits:EventListenersPerKey of the key's, or the key's request budget is spent.", ProblemCatalog.TooManyRequests);
        return app;
    }

    /// <param name="format">text (default), json or perf-script.</param>
    /// <param name="events">Tracepoint names separated by commas (mm_page_alloc,mm_page_free); every event when left out.</param>
    /// <param name="zone">Only this zone's events.</param>
    /// <param name="order">Only events of this order.</param>
    /// <param name="seconds">End the stream after this many seconds (1..3600); it runs until the client goes away when left out.</param>
    /// <param name="limit">End the stream after this many events (1..1000000).</param>
    public static IResult Stream(MachineScope scope, EventStreams streams, IHostApplicationLifetime lifetime, HttpContext context,
        string? format, string? events, string? zone, int? order, int? seconds, int? limit, CancellationToken cancellationToken)
    {
        format ??= "text";
        if (!Formats.Contains(format, StringComparer.Ordinal))
        {
            return Problems.Of(ProblemCatalog.InvalidEventFilter, $"format '{format}' is not one of {string.Join(", ", Formats)}.");
        }
        var types = 0u;
        foreach (var name in (events ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var bare = name.Contains(':', StringComparison.Ordinal) ? name[(name.IndexOf(':', StringComparison.Ordinal) + 1)..] : name;
            if (!TraceText.ByName.TryGetValue(bare, out var type))
            {
                return Problems.Of(ProblemCatalog.InvalidEventFilter,
                    $"'{name}' is not a tracepoint. Events: {string.Join(", ", TraceText.ByName.Keys)}.");
            }
            types |= TraceFilter.TypeBit(type);
        }
        if (order is < 0 or > PageAllocConstants.MaxPageOrder)
        {
            return Problems.Of(ProblemCatalog.InvalidEventFilter, $"order {order} is outside 0..{PageAllocConstants.MaxPageOrder}.");
        }
        if (seconds is < 1 or > MaxSeconds || limit is < 1 or > MaxLimit)
        {
            return Problems.Of(ProblemCatalog.InvalidEventFilter,
                $"seconds must be 1..{MaxSeconds} and limit 1..{MaxLimit} (seconds {seconds?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "none"}, limit {limit?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "none"}).");
        }
        var end = new StreamEnd(seconds is { } s ? TimeSpan.FromSeconds(s) : null, limit ?? long.MaxValue);
        var machine = scope.Machine;
        var zoneIndex = -1;
        if (zone is not null)
        {
            if (machine.FindZone(zone) is not { } z)
            {
                return Problems.UnknownZone(zone, machine.Zones.Select(k => k.Key));
            }
            zoneIndex = machine.Zones.ToList().IndexOf(z);
        }
        // Attached before it is counted, so that a stream counted as open already sees every event.
        var listener = scope.Hosted.Tracepoints.Listen(new TraceFilter(types == 0 ? TraceFilter.AllTypes : types, zoneIndex, order ?? -1), streams.BufferEvents);
        var key = context.User.Identity is { IsAuthenticated: true, Name: { } keyName } ? keyName : null;
        if (!streams.TryOpen(key, context.Connection.RemoteIpAddress, out var lease, out var refusal))
        {
            listener.Dispose();
            context.Response.Headers.RetryAfter = "1";
            return Problems.Of(ProblemCatalog.TooManyRequests, refusal);
        }
        var stop = new StreamStop(cancellationToken, lifetime.ApplicationStopping);
        listener.Overflowed = stop.FellBehind;
        // The machine's zones by index: a reset boots the same zones in the same order.
        var hosted = scope.Hosted;
        string ZoneKey(int index) => hosted.Machine.Zones[index].Key;
        return format switch
        {
            "json" => new EventStream<TraceEventJson>(Json(listener, lease, end, ZoneKey, stop), stop),
            "perf-script" => new PerfScriptStream(Lines(listener, lease, end, stop), stop),
            _ => new EventStream<string>(Text(listener, lease, end, stop), stop),
        };
    }

    private static async IAsyncEnumerable<SseItem<string>> Text(TraceListener listener, IDisposable lease, StreamEnd end, StreamStop stop)
    {
        await foreach (var (e, lost) in Read(listener, lease, end, stop))
        {
            yield return lost > 0 ? new SseItem<string>(TraceText.Lost(lost), "lost") : new SseItem<string>(TraceText.Fields(in e), TraceText.Name(e.Type));
        }
    }

    private static async IAsyncEnumerable<SseItem<TraceEventJson>> Json(TraceListener listener, IDisposable lease, StreamEnd end, Func<int, string> zoneKey, StreamStop stop)
    {
        await foreach (var (e, lost) in Read(listener, lease, end, stop))
        {
            yield return lost > 0
                ? new SseItem<TraceEventJson>(new TraceEventJson("lost", "ftrace", 0, 0, "", lost, 0, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, TraceText.Lost(lost)), "lost")
                : new SseItem<TraceEventJson>(TraceEventJson.From(in e, zoneKey(e.Zone)), TraceText.Name(e.Type));
        }
    }

    private static async IAsyncEnumerable<string> Lines(TraceListener listener, IDisposable lease, StreamEnd end, StreamStop stop)
    {
        var pid = Environment.ProcessId;
        await foreach (var (e, lost) in Read(listener, lease, end, stop))
        {
            yield return lost > 0 ? TraceText.Lost(lost) : TraceText.PerfScriptLine(in e, "pagealloc", pid);
        }
    }

    private const int MaxSeconds = 3600;
    private const int MaxLimit = 1_000_000;

    /// <summary>When a stream ends on its own: after a time, after a number of events (Swagger UI shows an answer only once it has ended).</summary>
    private sealed record StreamEnd(TimeSpan? After, long Events);

    /// <summary>
    /// The listener's events as they come, until the client goes away, <paramref name="end"/> is
    /// reached or the host stops; or until events were lost: then the buffer's events, the count lost
    /// (as an item with lost &gt; 0), and the end. A reader that cannot keep up is let go rather than
    /// fed a stream with holes.
    /// </summary>
    private static async IAsyncEnumerable<(TraceEvent Event, long Lost)> Read(TraceListener listener, IDisposable lease, StreamEnd end, StreamStop stop,
        [EnumeratorCancellation] CancellationToken ct = default)
    {
        using (lease)
        using (listener)
        using (var deadline = CancellationTokenSource.CreateLinkedTokenSource(stop.Token, ct))
        {
            if (end.After is { } after)
            {
                deadline.CancelAfter(after);
            }
            var sent = 0L;
            while (sent < end.Events && await More(listener, deadline.Token, stop.RequestAborted))
            {
                while (sent < end.Events && listener.Events.TryRead(out var e))
                {
                    sent++;
                    yield return (e, 0);
                }
                // The buffer held what came before the drops: report them after it, where ftrace would, and end.
                if (listener.TakeLost() is > 0 and var lost)
                {
                    yield return (default, lost);
                    yield break;
                }
            }
        }
    }

    /// <summary>Waits for events: false when the stream's own time is up or the host stops; a client gone is the framework's to handle.</summary>
    private static async ValueTask<bool> More(TraceListener listener, CancellationToken deadline, CancellationToken requestAborted)
    {
        try
        {
            return await listener.Events.WaitToReadAsync(deadline);
        }
        catch (OperationCanceledException) when (!requestAborted.IsCancellationRequested)
        {
            return false;
        }
    }
}

/// <summary>
/// The open event streams against Limits:EventListeners, and with API keys each key's against
/// Limits:EventListenersPerKey; taken and given back under one lock (a stream opens rarely).
/// </summary>
public sealed class EventStreams(IOptions<LimitsOptions> limits)
{
    private readonly Lock _lock = new();
    // Streams open per holder: an API key, or with keys off a client address (the two never mix).
    private readonly Dictionary<Holder, int> _perHolder = [];

    private readonly record struct Holder(bool IsKey, string Name);
    private int _open;

    public int Limit => limits.Value.EventListeners;

    public int PerKeyLimit => limits.Value.EventListenersPerKey;

    public int PerClientLimit => limits.Value.EventListenersPerClient;

    public int BufferEvents => limits.Value.EventBufferEvents;

    public int Open => Volatile.Read(ref _open);

    /// <summary>
    /// A place for a stream of <paramref name="key"/>, or with keys off (null) of the client at
    /// <paramref name="client"/> (an IPv4 address or an IPv6 /64, as connections are shared out);
    /// false with why not.
    /// </summary>
    public bool TryOpen(string? key, System.Net.IPAddress? client, out IDisposable lease, [System.Diagnostics.CodeAnalysis.NotNullWhen(false)] out string? refusal)
    {
        var (holder, most) = key is not null ? (new Holder(true, key), PerKeyLimit) : (new Holder(false, Infrastructure.ConnectionFairness.Describe(client)), PerClientLimit);
        lock (_lock)
        {
            var held = _perHolder.GetValueOrDefault(holder);
            refusal = _open >= Limit ? $"{Limit} event streams are open already (Limits:EventListeners); close one or try later."
                : held < most ? null
                : holder.IsKey ? $"API key '{key}' has {PerKeyLimit} event streams open already (Limits:EventListenersPerKey); close one first."
                : $"{holder.Name} has {PerClientLimit} event streams open already (Limits:EventListenersPerClient); close one first.";
            if (refusal is not null)
            {
                lease = null!;
                return false;
            }
            Volatile.Write(ref _open, _open + 1);
            _perHolder[holder] = held + 1;
        }
        lease = new Lease(this, holder);
        return true;
    }

    private void Close(Holder holder)
    {
        lock (_lock)
        {
            Volatile.Write(ref _open, _open - 1);
            if (--System.Runtime.InteropServices.CollectionsMarshal.GetValueRefOrNullRef(_perHolder, holder) == 0)
            {
                _perHolder.Remove(holder);
            }
        }
    }

    private sealed class Lease(EventStreams owner, Holder holder) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                owner.Close(holder);
            }
        }
    }
}

/// <summary>
/// What ends a stream besides its own ends (seconds, limit): its client gone, the host stopping
/// (IHostApplicationLifetime.ApplicationStopping: SIGTERM does not wait for open streams), or its
/// reader fallen behind and not even reading the lost line within <see cref="CatchUp"/>.
/// </summary>
public sealed class StreamStop : IDisposable
{
    /// <summary>After its first lost event, how long a stream has to send the lost line before it is cut off.</summary>
    public static readonly TimeSpan CatchUp = TimeSpan.FromSeconds(2);

    private readonly CancellationTokenSource _behind = new();
    private readonly CancellationTokenSource _any;

    public StreamStop(CancellationToken requestAborted, CancellationToken stopping)
    {
        RequestAborted = requestAborted;
        _any = CancellationTokenSource.CreateLinkedTokenSource(requestAborted, stopping, _behind.Token);
    }

    /// <summary>Canceled when the stream must end: the client gone, the host stopping, or the reader cut off.</summary>
    public CancellationToken Token => _any.Token;

    public CancellationToken RequestAborted { get; }

    /// <summary>The listener lost events (called on the emitting thread: it only schedules the cut-off).</summary>
    public void FellBehind()
    {
        try
        {
            _behind.CancelAfter(CatchUp);
        }
        catch (ObjectDisposedException)
        {
            // the stream has ended already
        }
    }

    /// <summary>
    /// A write canceled by <see cref="Token"/>: a response cut off in the middle cannot end cleanly,
    /// so its connection is aborted (the client gone has nothing to abort).
    /// </summary>
    public void CutOff(HttpContext context)
    {
        if (!RequestAborted.IsCancellationRequested)
        {
            context.Abort();
        }
    }

    public void Dispose()
    {
        _any.Dispose();
        _behind.Dispose();
    }
}

/// <summary>
/// Server-Sent Events written by the framework's SseFormatter, with the headers sent at once rather
/// than with the first event (TypedResults.ServerSentEvents waits for it), so a client knows at once
/// that the stream is open, however quiet the allocator is.
/// </summary>
public sealed class EventStream<T>(IAsyncEnumerable<SseItem<T>> items, StreamStop stop) : IResult
{
    public async Task ExecuteAsync(HttpContext httpContext)
    {
        var response = httpContext.Response;
        response.ContentType = "text/event-stream";
        response.Headers.CacheControl = "no-cache,no-store";
        httpContext.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpResponseBodyFeature>()?.DisableBuffering();
        using var _ = stop;
        var ct = stop.Token;
        var json = httpContext.RequestServices.GetRequiredService<IOptions<Microsoft.AspNetCore.Http.Json.JsonOptions>>().Value.SerializerOptions;
        try
        {
            await response.StartAsync(ct);
            await response.Body.FlushAsync(ct);
            await SseFormatter.WriteAsync(items, response.Body, (item, writer) =>
            {
                if (item.Data is string text)
                {
                    System.Text.EncodingExtensions.GetBytes(System.Text.Encoding.UTF8, text, writer);
                }
                else
                {
                    using var json8 = new System.Text.Json.Utf8JsonWriter(writer);
                    System.Text.Json.JsonSerializer.Serialize(json8, item.Data, json);
                }
            }, ct);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            stop.CutOff(httpContext); // the client went away, or the host stops, or the reader was cut off: the stream ends
        }
    }
}

/// <summary>Lines written as they come as text/plain, flushed whenever the stream has nothing more at hand.</summary>
public sealed class PerfScriptStream(IAsyncEnumerable<string> lines, StreamStop stop) : IResult
{
    public async Task ExecuteAsync(HttpContext httpContext)
    {
        httpContext.Response.ContentType = "text/plain; charset=utf-8";
        using var _ = stop;
        var ct = stop.Token;
        await using var writer = new StreamWriter(httpContext.Response.Body, new System.Text.UTF8Encoding(false), 1 << 14, leaveOpen: true);
        try
        {
            // Headers now, not with the first event: a client sees at once that the stream is open.
            await httpContext.Response.StartAsync(ct);
            await httpContext.Response.Body.FlushAsync(ct);
            await foreach (var line in lines.WithCancellation(ct))
            {
                await writer.WriteAsync(line);
                await writer.WriteAsync('\n');
                await writer.FlushAsync(ct);
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            stop.CutOff(httpContext); // the client went away, or the host stops, or the reader was cut off: the stream ends
        }
    }
}
