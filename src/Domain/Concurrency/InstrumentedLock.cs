using System.Diagnostics;

namespace PageAlloc.Domain.Concurrency;

/// <summary>
/// A <see cref="Lock"/> that keeps the statistics CONFIG_LOCK_STAT would: acquisitions, contended
/// acquisitions, time spent waiting and time held.
/// <para>
/// Timing every acquisition would cost two clock reads (about 40 ns here) on paths that take
/// 20 ns, so, like lock_stat's own sampling of hold times, hold time is measured on one
/// acquisition in <see cref="HoldSampleInterval"/> and scaled up. Wait time is measured exactly, but
/// only on contended acquisitions, where the clock read is hidden by the wait.
/// </para>
/// The counters are plain fields written while the lock is held, so they need no atomics.
/// </summary>
public sealed class InstrumentedLock
{
    public const int HoldSampleInterval = 64;

    private readonly Lock _lock = new();
    private long _acquisitions;
    private long _contended;
    private long _failedTryLocks;
    private long _waitTicks;
    private long _holdTicksSampled;
    private long _holdSamples;
    private long _holdStart;

    public string Name { get; }

    public InstrumentedLock(string name) => Name = name;

    /// <summary>spin_lock(): blocks; a contended acquisition records how long it waited.</summary>
    public Scope Enter()
    {
        if (!_lock.TryEnter())
        {
            var start = Stopwatch.GetTimestamp();
            _lock.Enter();
            _waitTicks += Stopwatch.GetTimestamp() - start;
            _contended++;
        }
        OnAcquired();
        return new Scope(this);
    }

    /// <summary>spin_trylock(): a failure is counted and nothing is held.</summary>
    public bool TryEnter()
    {
        if (!_lock.TryEnter())
        {
            Interlocked.Increment(ref _failedTryLocks);
            return false;
        }
        OnAcquired();
        return true;
    }

    public void Exit()
    {
        if (_holdStart != 0)
        {
            _holdTicksSampled += Stopwatch.GetTimestamp() - _holdStart;
            _holdSamples++;
            _holdStart = 0;
        }
        _lock.Exit();
    }

    public bool IsHeldByCurrentThread => _lock.IsHeldByCurrentThread;

    private void OnAcquired()
    {
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
