using System.Collections.Immutable;

namespace PageAlloc.Domain.Reclaim;

/// <summary>
/// The vm_event_item counters of reclaim, migration and compaction (include/linux/vm_event_item.h),
/// machine-wide as the kernel's are (summed over cpus), in /proc/vmstat's order. allocstall_* is per
/// zone type, indexed by gfp_zone() of the allocation that stalled.
/// </summary>
public enum VmscanEvent
{
    AllocstallDma,
    AllocstallDma32,
    AllocstallNormal,
    AllocstallMovable,
    PgActivate,
    PgDeactivate,
    PgRefill,
    PgstealKswapd,
    PgstealDirect,
    PgscanKswapd,
    PgscanDirect,
    PgscanAnon,
    PgscanFile,
    PgstealAnon,
    PgstealFile,
    KswapdLowWmarkHitQuickly,
    KswapdHighWmarkHitQuickly,
    PageOutRun,
    DropPagecache,
    DropSlab,
    PgmigrateSuccess,
    PgmigrateFail,
    CompactMigrateScanned,
    CompactFreeScanned,
    CompactIsolated,
    CompactStall,
    CompactFail,
    CompactSuccess,
    CompactDaemonWake,
    CompactDaemonMigrateScanned,
    CompactDaemonFreeScanned,
}

public static class VmscanEvents
{
    public const int Count = 31;

    /// <summary>The names vmstat_text gives them, in the enum's order.</summary>
    public static ImmutableArray<string> Names { get; } =
    [
        "allocstall_dma", "allocstall_dma32", "allocstall_normal", "allocstall_movable",
        "pgactivate", "pgdeactivate", "pgrefill",
        "pgsteal_kswapd", "pgsteal_direct", "pgscan_kswapd", "pgscan_direct",
        "pgscan_anon", "pgscan_file", "pgsteal_anon", "pgsteal_file",
        "kswapd_low_wmark_hit_quickly", "kswapd_high_wmark_hit_quickly", "pageoutrun",
        "drop_pagecache", "drop_slab",
        "pgmigrate_success", "pgmigrate_fail",
        "compact_migrate_scanned", "compact_free_scanned", "compact_isolated",
        "compact_stall", "compact_fail", "compact_success",
        "compact_daemon_wake", "compact_daemon_migrate_scanned", "compact_daemon_free_scanned",
    ];

    public static string Name(VmscanEvent e) => Names[(int)e];
}

/// <summary>The counters, bumped from any thread; reads may be a moment old, as /proc/vmstat's are.</summary>
public sealed class VmscanCounters
{
    private readonly long[] _counts = new long[VmscanEvents.Count];

    public long this[VmscanEvent e] => Volatile.Read(ref _counts[(int)e]);

    internal void Add(VmscanEvent e, long n)
    {
        if (n != 0)
        {
            Interlocked.Add(ref _counts[(int)e], n);
        }
    }

    /// <summary>Every counter, in the enum's order.</summary>
    public long[] Read()
    {
        var copy = new long[_counts.Length];
        for (var i = 0; i < copy.Length; i++)
        {
            copy[i] = Volatile.Read(ref _counts[i]);
        }
        return copy;
    }

    /// <summary>Sets every counter (a fork, a snapshot read); the machine is quiescent.</summary>
    internal void Restore(ReadOnlySpan<long> counts) => counts.CopyTo(_counts);
}
