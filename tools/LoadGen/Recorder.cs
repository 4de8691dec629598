namespace PageAlloc.LoadGen;

/// <summary>
/// Collects every call's latency and status per operation, and counts the pages the run
/// allocated and freed, so the report can say whether every page came back.
/// </summary>
internal sealed class Recorder
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, List<double>> _latencyMs = [];
    private readonly Dictionary<string, long> _errors = [];
    private long _allocatedPages;
    private long _freedPages;
    private long _requests;

    /// <summary>When false (the cleanup after the timed part), calls count for leaks only.</summary>
    public bool Timing { get; set; } = true;

    public long Requests => Interlocked.Read(ref _requests);

    public long Errors
    {
        get
        {
            lock (_lock)
            {
                return _errors.Values.Sum();
            }
        }
    }

    /// <summary>Records a call; a successful alloc_pages adds its pages to the allocated count.</summary>
    public CallResult Record(string operation, CallResult result, long allocatedPages = 0)
    {
        lock (_lock)
        {
            if (Timing)
            {
                if (!_latencyMs.TryGetValue(operation, out var list))
                {
                    _latencyMs[operation] = list = [];
                }
                list.Add(result.Latency.TotalMilliseconds);
                _requests++;
            }
            if (!result.IsSuccess)
            {
                var key = $"{operation} {(result.Status == 0 ? result.Failure : result.Status.ToString(System.Globalization.CultureInfo.InvariantCulture))}";
                _errors[key] = _errors.GetValueOrDefault(key) + 1;
            }
            else if (allocatedPages > 0)
            {
                _allocatedPages += allocatedPages;
            }
        }
        return result;
    }

    /// <summary>
    /// Records a free: the response's "freed" is a page count (free_contig_range,
    /// free_pages_bulk) or a flag meaning the block of <paramref name="blockPages"/> went back.
    /// </summary>
    public CallResult RecordFreed(string operation, CallResult result, long blockPages = 0)
    {
        Record(operation, result);
        if (result.IsSuccess && result.Body?["freed"] is { } freed)
        {
            var pages = freed.GetValueKind() == System.Text.Json.JsonValueKind.Number ? freed.GetValue<long>()
                : freed.GetValue<bool>() ? blockPages : 0;
            lock (_lock)
            {
                _freedPages += pages;
            }
        }
        return result;
    }

    public (long Allocated, long Freed) Pages
    {
        get
        {
            lock (_lock)
            {
                return (_allocatedPages, _freedPages);
            }
        }
    }

    public IReadOnlyDictionary<string, long> ErrorsByStatus()
    {
        lock (_lock)
        {
            return new SortedDictionary<string, long>(_errors);
        }
    }

    public IReadOnlyList<OperationStats> Operations(TimeSpan elapsed)
    {
        lock (_lock)
        {
            return _latencyMs.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p =>
            {
                var sorted = p.Value.Order().ToArray();
                double At(double q) => sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(q * sorted.Length) - 1)];
                return new OperationStats(p.Key, sorted.Length, Math.Round(sorted.Length / elapsed.TotalSeconds, 1),
                    Math.Round(At(0.50), 3), Math.Round(At(0.90), 3), Math.Round(At(0.99), 3), Math.Round(sorted[^1], 3));
            }).ToList();
        }
    }
}

/// <summary>One operation's count, rate and latency percentiles in milliseconds.</summary>
public sealed record OperationStats(string Operation, long Count, double PerSecond, double P50Ms, double P90Ms, double P99Ms, double MaxMs);
