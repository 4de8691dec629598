namespace PageAlloc.Domain.Experiments;

/// <summary>
/// One point of a run's timeline, after <see cref="Step"/> steps of its workload. The free lists and
/// fragmentation indices are the workload's zone's (buddyinfo, unusable_index, extfrag_index); the
/// counters are the whole machine's since the run began (an allocation may fall back to another
/// zone). Everything but <see cref="ElapsedNs"/> is a function of the machine, the variant and the
/// seed: two runs that differ in nothing give the same timeline.
/// </summary>
/// <param name="FreePages">NR_FREE_PAGES of the zone (the buddy's; pcp pages apart, as in the kernel).</param>
/// <param name="PcpPages">Pages on the zone's pcp lists, all cpus.</param>
/// <param name="FreeBlocksByOrder">The zone's free blocks per order, as /proc/buddyinfo.</param>
/// <param name="UnusableIndex">unusable_index per order, 0..1 (debugfs extfrag/unusable_index).</param>
/// <param name="ExtfragIndex">extfrag_index per order, -1 where a block of the order is free (debugfs extfrag/extfrag_index).</param>
/// <param name="HighOrderAttempts">Allocations the workload itself asked for above PAGE_ALLOC_COSTLY_ORDER (the loops' and the range user's).</param>
/// <param name="HighOrderFailures">Of those, the ones that failed.</param>
/// <param name="AllocFailures">Every failed allocation of the run, at any order (the machine's alloc_fail).</param>
/// <param name="PcpRefills">rmqueue_bulk() calls.</param>
/// <param name="PcpDrains">free_pcppages_bulk() calls.</param>
/// <param name="ZoneLockAcquisitions">zone->lock taken, every zone.</param>
/// <param name="ZoneLockContended">zone->lock found held (0 for a run on one thread, as every run is: see docs/experiments.md).</param>
/// <param name="Fallbacks">mm_page_alloc_extfrag: blocks taken from another migratetype (claimed and stolen).</param>
/// <param name="ElapsedNs">Time the workload ran so far, sampling left out.</param>
public sealed record ExperimentSample(
    long Step,
    long FreePages,
    long PcpPages,
    long[] FreeBlocksByOrder,
    double[] UnusableIndex,
    double[] ExtfragIndex,
    long HighOrderAttempts,
    long HighOrderFailures,
    long AllocFailures,
    long PcpRefills,
    long PcpDrains,
    long ZoneLockAcquisitions,
    long ZoneLockContended,
    long Fallbacks,
    long ElapsedNs)
{
    /// <summary>The sample with its time left out: what two runs that differ in nothing agree on.</summary>
    public ExperimentSample Untimed() => this with { ElapsedNs = 0 };

    /// <summary>Field-by-field equality, arrays by content (a record compares arrays by reference).</summary>
    public bool SameAs(ExperimentSample other) =>
        Step == other.Step && FreePages == other.FreePages && PcpPages == other.PcpPages
        && FreeBlocksByOrder.AsSpan().SequenceEqual(other.FreeBlocksByOrder)
        && UnusableIndex.AsSpan().SequenceEqual(other.UnusableIndex)
        && ExtfragIndex.AsSpan().SequenceEqual(other.ExtfragIndex)
        && HighOrderAttempts == other.HighOrderAttempts && HighOrderFailures == other.HighOrderFailures
        && AllocFailures == other.AllocFailures && PcpRefills == other.PcpRefills && PcpDrains == other.PcpDrains
        && ZoneLockAcquisitions == other.ZoneLockAcquisitions && ZoneLockContended == other.ZoneLockContended
        && Fallbacks == other.Fallbacks && ElapsedNs == other.ElapsedNs;
}
