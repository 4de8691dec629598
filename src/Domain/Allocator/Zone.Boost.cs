using static PageAlloc.Domain.Model.PageAllocConstants;

namespace PageAlloc.Domain.Allocator;

// Watermark boosting (mm/page_alloc.c boost_watermark(), v6.15-v6.18): a fallback that claims or
// steals from a pageblock of another migratetype raises every watermark of the zone by a
// pageblock, up to watermark_boost_factor (150%) of the high one, so that kswapd reclaims (and then
// kcompactd would compact) before fallbacks mix migratetypes further; kswapd takes the boost back
// once it has reclaimed. ZONE_BOOSTED_WATERMARK asks the next allocation to wake kswapd, since the
// node may be balanced and kswapd would not wake on its own.
public sealed partial class Zone
{
    /// <summary>vm.watermark_boost_factor's default (in 10000ths of the high watermark); the sysctl is not modelled.</summary>
    public const int WatermarkBoostFactor = 15000;

    // zone->watermark_boost, and the marks with it added (null when there is none: Watermarks is then BaseWatermarks).
    private long _watermarkBoost;
    private Watermarks? _boostedWatermarks;
    private bool _boostedFlag;

    /// <summary>zone->watermark_boost, in pages.</summary>
    public long WatermarkBoost => Volatile.Read(ref _watermarkBoost);

    /// <summary>ZONE_BOOSTED_WATERMARK: set by a boost an ALLOC_KSWAPD allocation caused, cleared by the allocation that then wakes kswapd.</summary>
    internal bool BoostedWatermarkFlag
    {
        get => Volatile.Read(ref _boostedFlag);
        set => Volatile.Write(ref _boostedFlag, value);
    }

    private void SetWatermarkBoost(long boost)
    {
        var b = BaseWatermarks;
        Volatile.Write(ref _boostedWatermarks, boost == 0 ? null : new Watermarks(b.Min + boost, b.Low + boost, b.High + boost, b.Promo + boost));
        Volatile.Write(ref _watermarkBoost, boost);
    }

    /// <summary>
    /// boost_watermark(): a pageblock more boost, at most watermark_boost_factor of the high
    /// watermark (and at least a pageblock); not for a zone under four pageblocks. Returns whether
    /// it boosted. Caller holds zone->lock.
    /// </summary>
    private bool BoostWatermark()
    {
        if ((long)PageblockNrPages * 4 > ManagedPages)
        {
            return false;
        }
        var maxBoost = BaseWatermarks.High * WatermarkBoostFactor / 10000; // mult_frac()
        if (maxBoost == 0)
        {
            return false;
        }
        maxBoost = Math.Max(PageblockNrPages, maxBoost);
        SetWatermarkBoost(Math.Min(_watermarkBoost + PageblockNrPages, maxBoost));
        return true;
    }

    /// <summary>balance_pgdat()'s end: the boost kswapd sampled when it started comes off (a boost added meanwhile stays). Takes zone->lock.</summary>
    internal void RemoveWatermarkBoost(long sampled)
    {
        using var _ = ZoneLock.Enter();
        SetWatermarkBoost(_watermarkBoost - Math.Min(_watermarkBoost, sampled));
    }

    /// <summary>A fork's or snapshot's boost and flag; the machine is quiescent.</summary>
    internal void RestoreBoost(long boost, bool flag)
    {
        SetWatermarkBoost(boost);
        _boostedFlag = flag;
    }
}
