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
