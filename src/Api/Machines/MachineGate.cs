namespace PageAlloc.Api.Machines;

/// <summary>
/// Lets a machine's page calls run together and a snapshot or fork see the machine still: page calls
/// enter shared (an interlocked count, no lock), a snapshot enters exclusive and waits until the
/// calls already inside have left; calls that arrive meanwhile wait until it is done. The domain's
/// own locks (zone->lock, pcp locks) keep page calls correct among themselves; this gate only keeps
/// them out of a copy in progress, which reads every list without those locks.
/// <para>Not a ReaderWriterLockSlim: a shared holder may finish on another thread (an asynchronous
/// call), and the framework has no reader-writer lock without thread affinity.</para>
/// </summary>
public sealed class MachineGate : IDisposable
{
    private readonly Lock _exclusive = new();
    private readonly ManualResetEventSlim _open = new(initialState: true);
    private int _inside;
    private int _closed;
    private long _operations;

    /// <summary>Calls that entered to change the machine (and resets, <see cref="CountOperation"/>): how far it is past a snapshot.</summary>
    public long Operations => Interlocked.Read(ref _operations);

    /// <summary>Counts a change made outside the gate (a reset swaps in a new machine).</summary>
    public void CountOperation() => Interlocked.Increment(ref _operations);

    /// <summary>Enters as one of many page calls; waits while a snapshot or fork holds the gate.</summary>
    public void EnterShared()
    {
        while (true)
        {
            Interlocked.Increment(ref _inside);
            if (Volatile.Read(ref _closed) == 0)
            {
                Interlocked.Increment(ref _operations);
                return;
            }
            // A copy is starting or running: step back out so it can finish, and wait for it.
            Interlocked.Decrement(ref _inside);
            _open.Wait();
        }
    }

    public void ExitShared() => Interlocked.Decrement(ref _inside);

    public void Dispose() => _open.Dispose();

    /// <summary>Runs <paramref name="still"/> with no page call inside; one such run at a time.</summary>
    public T Exclusive<T>(Func<T> still)
    {
        lock (_exclusive)
        {
            _open.Reset();
            Interlocked.Exchange(ref _closed, 1); // a full fence: the read of _inside below cannot move above it
            var spin = new SpinWait();
            while (Volatile.Read(ref _inside) != 0)
            {
                spin.SpinOnce();
            }
            try
            {
                return still();
            }
            finally
            {
                Volatile.Write(ref _closed, 0);
                _open.Set();
            }
        }
    }
}
