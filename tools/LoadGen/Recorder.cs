using HdrHistogram;

namespace PageAlloc.LoadGen;

/// <summary>
/// What one worker saw: a latency histogram per operation (HdrHistogram, microseconds, 3 significant
/// digits), failures by operation and status, and the pages it allocated and freed. Each worker owns
/// its recorder, so recording takes no lock; the report merges them at the end. Only the request
/// count is shared (it is the --requests budget and the progress line).
/// </summary>
internal sealed class Recorder(RunCounters counters)
{
    /// <summary>Latencies above a minute are recorded as a minute.</summary>
    private const long HighestMicroseconds = 60_000_000;

    private readonly Dictionary<string, LongHistogram> _latency = [];
    private readonly Dictionary<string, long> _errors = [];

    public long AllocatedPages { get; private set; }

    /// <summary>Timed requests this worker made, and how many failed (for the per-machine report).</summary>
    public long Requests { get; private set; }

    public long Failed { get; private set; }

    public long FreedPages { get; private set; }

    public IReadOnlyDictionary<string, LongHistogram> Latency => _latency;

    public IReadOnlyDictionary<string, long> Errors => _errors;

    /// <summary>Records a call (timed unless the run is in its cleanup); returns its answer when it succeeded.</summary>
    public T? Record<T>(string operation, CallResult<T> result)
    {
        if (counters.Timing)
        {
            if (!_latency.TryGetValue(operation, out var histogram))
            {
                _latency[operation] = histogram = new LongHistogram(HighestMicroseconds, 3);
            }
            histogram.RecordValue(Math.Clamp((long)result.Latency.TotalMicroseconds, 0, HighestMicroseconds));
            counters.CountRequest(result.IsSuccess);
            Requests++;
            Failed += result.IsSuccess ? 0 : 1;
        }
        if (!result.IsSuccess)
        {
            var key = $"{operation} {result.Failure}";
            _errors[key] = _errors.GetValueOrDefault(key) + 1;
        }
        return result.Value;
    }

    public void Allocated(long pages) => AllocatedPages += pages;

    public void Freed(long pages) => FreedPages += pages;
}

/// <summary>The counters every worker shares: requests and failures (for the budget and the progress line), and whether calls are timed.</summary>
internal sealed class RunCounters
{
    private long _requests;
    private long _errors;
    private long _dropped;

    /// <summary>False in the cleanup after the timed part: calls then count for the leak check only.</summary>
    public volatile bool Timing = true;

    public long Requests => Interlocked.Read(ref _requests);

    public long Errors => Interlocked.Read(ref _errors);

    /// <summary>Open model: steps due when every worker was busy.</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    public void CountRequest(bool succeeded)
    {
        Interlocked.Increment(ref _requests);
        if (!succeeded)
        {
            Interlocked.Increment(ref _errors);
        }
    }

    public void CountDropped() => Interlocked.Increment(ref _dropped);
}
