using PageAlloc.Domain.Model;

namespace PageAlloc.Domain.FaultInjection;

/// <summary>
/// fail_page_alloc (mm/fail_page_alloc.c, lib/fault-inject.c, Documentation/fault-injection/):
/// makes alloc_pages() fail on purpose, as prepare_alloc_pages() does when
/// should_fail_alloc_page() says so, before the allocator looks at a free list. Its attributes are
/// the debugfs files of /sys/kernel/debug/fail_page_alloc/ with the kernel's defaults: probability
/// 0 (off), interval 1, times 1, space 0, verbose 2, min-order 1, ignore-gfp-wait and
/// ignore-gfp-highmem Y. Each machine boots with the defaults, as a kernel does. The attributes
/// are written one at a time and read without locks, as the kernel's are; times and space are
/// changed atomically. Injected failures are counted here, apart from real ones. The probability
/// is drawn from a generator of the machine's own (the kernel's prandom is per cpu), whose state a
/// snapshot and a fork carry, so that a restored machine injects the failures the original would.
/// </summary>
public sealed class FailPageAlloc
{
    private int _probability;
    private long _interval = 1;
    private int _times = 1;
    private int _space;
    private int _verbose = 2;
    private int _minOrder = 1;
    private bool _ignoreGfpWait = true;
    private bool _ignoreGfpHighmem = true;
    private long _count;
    private long _injected;

    // The probability's draws: SplitMix64's state, one per machine (it was Random.Shared), so that a
    // machine restored from a snapshot, or forked, draws what the original would have drawn.
    private long _random = Random.Shared.NextInt64();

    /// <summary>probability: percent of the calls that pass every other test which fail (0 turns injection off).</summary>
    public int Probability { get => Volatile.Read(ref _probability); set => Volatile.Write(ref _probability, value); }

    /// <summary>interval: only every interval-th call that passes the other tests may fail (with probability 100 for exactly that).</summary>
    public long Interval { get => Volatile.Read(ref _interval); set => Volatile.Write(ref _interval, value); }

    /// <summary>times: how many more failures may be injected; -1 for no limit.</summary>
    public int Times { get => Volatile.Read(ref _times); set => Volatile.Write(ref _times, value); }

    /// <summary>space: a budget of pages allocated before failures start, decremented by each call's size.</summary>
    public int Space { get => Volatile.Read(ref _space); set => Volatile.Write(ref _space, value); }

    /// <summary>verbose: 0 silent, 1 a log line per failure, 2 with the call as well.</summary>
    public int Verbose { get => Volatile.Read(ref _verbose); set => Volatile.Write(ref _verbose, value); }

    /// <summary>min-order: allocations below this order are never failed.</summary>
    public int MinOrder { get => Volatile.Read(ref _minOrder); set => Volatile.Write(ref _minOrder, value); }

    /// <summary>ignore-gfp-wait: leave allocations that may sleep (__GFP_DIRECT_RECLAIM) alone.</summary>
    public bool IgnoreGfpWait { get => Volatile.Read(ref _ignoreGfpWait); set => Volatile.Write(ref _ignoreGfpWait, value); }

    /// <summary>ignore-gfp-highmem: leave __GFP_HIGHMEM allocations alone.</summary>
    public bool IgnoreGfpHighmem { get => Volatile.Read(ref _ignoreGfpHighmem); set => Volatile.Write(ref _ignoreGfpHighmem, value); }

    /// <summary>Failures injected since boot.</summary>
    public long Injected => Interlocked.Read(ref _injected);

    /// <summary>
    /// should_fail_alloc_page(): the gfp and order tests, then should_fail_ex(attr, 1 &lt;&lt; order):
    /// probability 0 never fails; times 0 never fails; the space budget absorbs calls until spent;
    /// interval skips all but every interval-th call; then the probability is drawn. A failure
    /// counts down times (unless -1), exactly even under racing calls. The fail_nth per-task knob and the task and stack filters
    /// are not modelled (there are no tasks).
    /// </summary>
    public bool ShouldFail(GfpFlags gfp, int order)
    {
        // probability == 0 is should_fail_ex()'s first test; checking it first changes no outcome
        // (the tests before it have no side effects) and keeps the disabled case to one read.
        var probability = Probability;
        if (probability == 0
            || order < MinOrder
            || (gfp & GfpFlags.NoFail) != 0
            || (IgnoreGfpHighmem && (gfp & GfpFlags.HighMem) != 0)
            || (IgnoreGfpWait && (gfp & GfpFlags.DirectReclaim) != 0)
            || Times == 0)
        {
            return false;
        }
        var size = 1 << order;
        int space;
        while ((space = Space) > size)
        {
            if (Interlocked.CompareExchange(ref _space, space - size, space) == space)
            {
                return false;
            }
        }
        var interval = Interval;
        if (interval > 1 && Interlocked.Increment(ref _count) % interval != 0)
        {
            return false;
        }
        if (probability <= NextPercent())
        {
            return false;
        }
        if (!TakeOneOfTimes())
        {
            return false;
        }
        Interlocked.Increment(ref _injected);
        return true;
    }

    /// <summary>
    /// A draw in 0..99 (the kernel's prandom_u32() % 100): SplitMix64 (Steele, Lea and Flood 2014),
    /// whose state advances by the golden gamma in one atomic add, so racing calls each get a draw
    /// of their own and the same state always gives the same sequence.
    /// </summary>
    private int NextPercent()
    {
        var z = (ulong)Interlocked.Add(ref _random, unchecked((long)0x9E3779B97F4A7C15));
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EB;
        z ^= z >> 31;
        return (int)(((z >> 32) * 100) >> 32);
    }

    /// <summary>Every attribute and internal counter, as a snapshot or a fork carries them.</summary>
    internal FailPageAllocState State
    {
        get => new(Probability, Interval, Times, Space, Verbose, MinOrder, IgnoreGfpWait, IgnoreGfpHighmem,
            Interlocked.Read(ref _count), Injected, Interlocked.Read(ref _random));
        set
        {
            (Probability, Interval, Times, Space, Verbose, MinOrder, IgnoreGfpWait, IgnoreGfpHighmem) =
                (value.Probability, value.Interval, value.Times, value.Space, value.Verbose, value.MinOrder, value.IgnoreGfpWait, value.IgnoreGfpHighmem);
            Interlocked.Exchange(ref _count, value.IntervalCount);
            Interlocked.Exchange(ref _injected, value.Injected);
            Interlocked.Exchange(ref _random, value.RandomState);
        }
    }

    /// <summary>
    /// Counts a failure down from times, unless times is -1. The kernel reads times and decrements
    /// it apart, so racing calls can inject one failure more than times allows; here the decrement
    /// is the claim, and times is never exceeded.
    /// </summary>
    private bool TakeOneOfTimes()
    {
        while (true)
        {
            var times = Times;
            if (times == -1)
            {
                return true;
            }
            if (times <= 0)
            {
                return false;
            }
            if (Interlocked.CompareExchange(ref _times, times - 1, times) == times)
            {
                return true;
            }
        }
    }
}

/// <summary>
/// fail_page_alloc's whole state: the debugfs attributes, the calls counted for interval
/// (fault_attr.count), the failures injected, and the random generator's state.
/// </summary>
internal readonly record struct FailPageAllocState(
    int Probability, long Interval, int Times, int Space, int Verbose, int MinOrder, bool IgnoreGfpWait, bool IgnoreGfpHighmem,
    long IntervalCount, long Injected, long RandomState);
