using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace PageAlloc.Domain.Concurrency;

/// <summary>
/// A spin lock that keeps the statistics CONFIG_LOCK_STAT would: acquisitions, contended
/// acquisitions, failed trylocks, time spent waiting and time held.
/// <para>
/// zone->lock and pcp->lock are spinlock_t, so this is a spin lock too: test-and-test-and-set with
/// one compare-and-swap to take it and a plain releasing store to drop it (a System.Threading.Lock
/// round trip pays two atomic read-modify-writes and two thread-id lookups: about 13 ns against 5
/// here). Waiters spin, then yield their time slice (never sleep), since the holder may have been
/// preempted, which a kernel spin lock holder cannot be. It is not reentrant, like spinlock_t.
/// </para>
/// <para>
/// Timing every acquisition would cost two clock reads on paths that take tens of nanoseconds, so,
/// like lock_stat's own sampling, hold time is measured on one acquisition in
/// <see cref="HoldSampleInterval"/> and scaled up. Wait time is measured exactly, but only on
/// contended acquisitions, where the clock read is hidden by the wait. The counters are plain
/// fields written while the lock is held, so they need no atomics.
/// </para>
/// </summary>
public sealed class InstrumentedLock
{
    public const int HoldSampleInterval = 1024;

    private int _held;
#if DEBUG
    private int _owner; // managed thread id of the holder, for the asserts
#endif
    private long _acquisitions;
    private long _contended;
    private long _failedTryLocks;
    private long _waitTicks;
    private long _holdTicksSampled;
    private long _holdSamples;
    private long _holdStart;

    public string Name { get; }

    public InstrumentedLock(string name) => Name = name;

    /// <summary>spin_lock(): spins until taken; a contended acquisition records how long it waited.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Scope Enter()
    {
        if (Interlocked.CompareExchange(ref _held, 1, 0) != 0)
        {
            EnterContended();
        }
        OnAcquired();
        return new Scope(this);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void EnterContended()
    {
        Debug.Assert(!IsHeldByCurrentThread, $"{Name} is not reentrant");
        var start = Stopwatch.GetTimestamp();
        var spinner = default(SpinWait);
        do
        {
            spinner.SpinOnce(sleep1Threshold: -1);
        }
        while (Volatile.Read(ref _held) != 0 || Interlocked.CompareExchange(ref _held, 1, 0) != 0);
        _waitTicks += Stopwatch.GetTimestamp() - start;
        _contended++;
    }

    /// <summary>spin_trylock(): a failure is counted and nothing is held.</summary>
    public bool TryEnter()
    {
        if (Volatile.Read(ref _held) != 0 || Interlocked.CompareExchange(ref _held, 1, 0) != 0)
        {
            Interlocked.Increment(ref _failedTryLocks);
            return false;
        }
        OnAcquired();
        return true;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Exit()
    {
        Debug.Assert(IsHeldByCurrentThread, $"{Name} released by a thread that does not hold it");
        if (_holdStart != 0)
        {
            _holdTicksSampled += Stopwatch.GetTimestamp() - _holdStart;
            _holdSamples++;
            _holdStart = 0;
        }
#if DEBUG
        _owner = 0;
#endif
        Volatile.Write(ref _held, 0);
    }

    /// <summary>In Debug builds, whether this thread holds the lock; in Release, whether any thread does.</summary>
    public bool IsHeldByCurrentThread =>
#if DEBUG
        Volatile.Read(ref _held) != 0 && _owner == Environment.CurrentManagedThreadId;
#else
        Volatile.Read(ref _held) != 0;
#endif

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void OnAcquired()
    {
#if DEBUG
        _owner = Environment.CurrentManagedThreadId;
#endif
        if ((++_acquisitions & (HoldSampleInterval - 1)) == 0)
        {
            _holdStart = Stopwatch.GetTimestamp();
        }
    }
    /// <summary>Reads the counters. Call with the lock held for a consistent snapshot.</summary>
    public LockStats Snapshot()
    {
        var holdNs = _holdSamples == 0 ? 0 : TicksToNs(_holdTicksSampled) * _acquisitions / _holdSamples;
        return new LockStats(Name, _acquisitions, _contended, Interlocked.Read(ref _failedTryLocks),
            TicksToNs(_waitTicks), holdNs, _holdSamples);
    }

    private static long TicksToNs(long ticks) => (long)(ticks * (1_000_000_000.0 / Stopwatch.Frequency));

    /// <summary>
    /// The counters as a snapshot keeps them: wait and sampled hold time in nanoseconds rather than
    /// Stopwatch ticks, so that a restore on a clock of another frequency reads the same figures.
    /// Exact integer arithmetic: on Linux (1 GHz ticks) a round trip gives the ticks back unchanged.
    /// </summary>
    internal LockCounters Counters() => new(
        _acquisitions, _contended, Interlocked.Read(ref _failedTryLocks),
        (long)((Int128)_waitTicks * 1_000_000_000 / Stopwatch.Frequency),
        (long)((Int128)_holdTicksSampled * 1_000_000_000 / Stopwatch.Frequency),
        _holdSamples);

    /// <summary>Takes over counters a snapshot recorded, on a lock nobody holds (a machine being restored).</summary>
    internal void Restore(LockCounters counters)
    {
        _acquisitions = counters.Acquisitions;
        _contended = counters.Contended;
        _failedTryLocks = counters.FailedTryLocks;
        _waitTicks = (long)((Int128)counters.WaitNs * Stopwatch.Frequency / 1_000_000_000);
        _holdTicksSampled = (long)((Int128)counters.HoldNsSampled * Stopwatch.Frequency / 1_000_000_000);
        _holdSamples = counters.HoldSamples;
        _holdStart = 0;
    }

    /// <summary>Takes over another lock's counters as they are (a fork: same process, same clock).</summary>
    internal void CopyCountersFrom(InstrumentedLock source)
    {
        _acquisitions = source._acquisitions;
        _contended = source._contended;
        _failedTryLocks = source._failedTryLocks;
        _waitTicks = source._waitTicks;
        _holdTicksSampled = source._holdTicksSampled;
        _holdSamples = source._holdSamples;
        _holdStart = 0;
    }

    /// <summary>Releases the lock at the end of a using block.</summary>
    public readonly ref struct Scope
    {
        private readonly InstrumentedLock _owner;

        internal Scope(InstrumentedLock owner) => _owner = owner;

        public void Dispose() => _owner.Exit();
    }
}

/// <summary>
/// One lock's statistics. HoldNs is estimated from <see cref="HoldSamples"/> sampled acquisitions.
/// </summary>
public sealed record LockStats(
    string Name,
    long Acquisitions,
    long Contended,
    long FailedTryLocks,
    long WaitNs,
    long HoldNs,
    long HoldSamples)
{
    public static LockStats Sum(string name, IEnumerable<LockStats> all)
    {
        long a = 0, c = 0, f = 0, w = 0, h = 0, s = 0;
        foreach (var x in all)
        {
            a += x.Acquisitions; c += x.Contended; f += x.FailedTryLocks; w += x.WaitNs; h += x.HoldNs; s += x.HoldSamples;
        }
        return new LockStats(name, a, c, f, w, h, s);
    }
}

/// <summary>
/// The state of one lock that a machine snapshot carries (lock_stat's counters): acquisitions,
/// contended acquisitions, failed trylocks, wait time and the sampled hold time with its sample count.
/// </summary>
internal readonly record struct LockCounters(long Acquisitions, long Contended, long FailedTryLocks, long WaitNs, long HoldNsSampled, long HoldSamples);
