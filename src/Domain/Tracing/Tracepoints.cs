using System.Diagnostics;
using System.Threading.Channels;

namespace PageAlloc.Domain.Tracing;

/// <summary>
/// The machine's tracepoints, as the kernel's static keys make them: with no listener, an emission
/// site costs one read of <see cref="Enabled"/>; with listeners, each event is offered to each one,
/// whose filter and bounded buffer decide. A full buffer drops the event and counts it lost, as
/// ftrace's ring buffer does, so a slow reader never slows the allocator.
/// One instance outlives resets (the service's listeners stay attached across reboots).
/// </summary>
public sealed class Tracepoints
{
    private readonly long _origin = Stopwatch.GetTimestamp();
    private readonly Lock _subscribe = new();
    private volatile TraceListener[] _listeners = [];

    // Kept beside _listeners so that the check at every emission site is one load of a bool.
    private volatile bool _enabled;

    /// <summary>The cpu the current thread's allocator call runs on (smp_processor_id()), set by the entry points while tracing.</summary>
    [ThreadStatic]
    private static int t_cpu;

    /// <summary>True while anybody listens: emission sites check this before building an event.</summary>
    public bool Enabled => _enabled;

    /// <summary>Seconds since the tracepoints were created, for a timestamp in a trace.</summary>
    public static double Seconds(long timestamp) => (double)timestamp / Stopwatch.Frequency;

    /// <summary>Notes the cpu the calling thread's allocator call is on, for the events it emits.</summary>
    public static void OnCpu(int cpu) => t_cpu = cpu;

    /// <summary>A new listener with its own filter and a buffer of <paramref name="capacity"/> events; dispose it to detach.</summary>
    public TraceListener Listen(TraceFilter filter, int capacity)
    {
        var listener = new TraceListener(this, filter, capacity);
        lock (_subscribe)
        {
            _listeners = [.. _listeners, listener];
            _enabled = true;
        }
        return listener;
    }

    internal void Detach(TraceListener listener)
    {
        lock (_subscribe)
        {
            _listeners = [.. _listeners.Where(l => l != listener)];
            _enabled = _listeners.Length != 0;
        }
    }

    /// <summary>Offers an event to every listener. Callers check <see cref="Enabled"/> first.</summary>
    public void Emit(TraceEventType type, int zone, long pfn, int order, int migrateType, bool flag = false,
        int fallbackOrder = 0, int fallbackMigrateType = 0, Model.GfpFlags gfp = 0, Model.FreeStrategy strategy = default,
        int node = 0, long nrPages = 0)
    {
        var e = new TraceEvent(type, Stopwatch.GetTimestamp() - _origin, t_cpu, zone, pfn, order, migrateType, flag, fallbackOrder, fallbackMigrateType, gfp, strategy,
            node, nrPages);
        Offer(in e);
    }

    /// <summary>Offers an event built by the caller (the compaction events, whose fields the others lack). Callers check <see cref="Enabled"/> first.</summary>
    public void Emit(TraceEvent partial)
    {
        var e = partial with { Timestamp = Stopwatch.GetTimestamp() - _origin, Cpu = t_cpu };
        Offer(in e);
    }

    private void Offer(in TraceEvent e)
    {
        foreach (var listener in _listeners)
        {
            listener.Offer(in e);
        }
    }
}

/// <summary>Which events a listener wants: a set of event types, one zone or all, one order or all.</summary>
public readonly record struct TraceFilter(uint Types, int Zone = -1, int Order = -1)
{
    public static uint AllTypes => (1u << (Enum.GetValues<TraceEventType>().Length)) - 1;

    public static uint TypeBit(TraceEventType type) => 1u << (int)type;

    public bool Matches(in TraceEvent e) =>
        (Types & TypeBit(e.Type)) != 0 && (Zone < 0 || Zone == e.Zone) && (Order < 0 || Order == e.Order);
}

/// <summary>
/// One listener: the events its filter lets through, in a bounded buffer read by one reader. When
/// the buffer is full the event is dropped and counted; <see cref="TakeLost"/> reports the count.
/// </summary>
public sealed class TraceListener : IDisposable
{
    private readonly Tracepoints _owner;
    private readonly TraceFilter _filter;
    private readonly Channel<TraceEvent> _buffer;
    private long _lost;

    internal TraceListener(Tracepoints owner, TraceFilter filter, int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        _owner = owner;
        _filter = filter;
        _buffer = Channel.CreateBounded<TraceEvent>(new BoundedChannelOptions(capacity)
        {
            FullMode = BoundedChannelFullMode.Wait, // with TryWrite: false when full, so the drop is counted
            SingleReader = true,
        });
    }

    public ChannelReader<TraceEvent> Events => _buffer.Reader;

    /// <summary>Events lost since the last call (the buffer was full), and resets the count.</summary>
    public long TakeLost() => Interlocked.Exchange(ref _lost, 0);

    /// <summary>
    /// Called on the emitting thread (inside the allocator's locks: it must only note or schedule)
    /// when an event is lost after none was since the last <see cref="TakeLost"/>.
    /// </summary>
    public Action? Overflowed { get; set; }

    internal void Offer(in TraceEvent e)
    {
        if (_filter.Matches(in e) && !_buffer.Writer.TryWrite(e) && Interlocked.Increment(ref _lost) == 1)
        {
            Overflowed?.Invoke();
        }
    }

    public void Dispose()
    {
        _owner.Detach(this);
        _buffer.Writer.TryComplete();
    }
}
