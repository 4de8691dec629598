using System.Diagnostics;

namespace PageAlloc.Domain.Allocator;

// Machine.Fork(): a zone takes over another's whole state by copying its arrays, with no
// compression and no list walk, on a zone built from the same configuration without Boot().
public sealed partial class Zone
{
    /// <summary>
    /// Copies every field of <paramref name="source"/>'s state into this zone (same configuration,
    /// built without booting). Next and Prev are copied whole, links of pages on no list included:
    /// those bytes stay in this process, in arrays only the lists read, and copying them whole is one
    /// memory copy where rebuilding the lists would be a walk. The source is quiescent.
    /// </summary>
    internal void CopyStateFrom(Zone source)
    {
        Debug.Assert(source.StartPfn == StartPfn && source.SpannedPages == SpannedPages && source._pcp.Length == _pcp.Length);
        source.RefCount.CopyTo(RefCount, 0);
        source.Next.CopyTo(Next, 0);
        source.Prev.CopyTo(Prev, 0);
        source.Flags.CopyTo(Flags, 0);
        source.Order.CopyTo(Order, 0);
        source._memcgIds?.CopyTo(_memcgIds!, 0);
        _lruOf = source._lruOf is { } lruOf ? (byte[])lruOf.Clone() : null;
        _lru.CopyFrom(source._lru, links: false);
        source._lruPages.CopyTo(_lruPages, 0);
        RestoreCompactionState(source.CompactionState());
        RestoreBoost(source._watermarkBoost, source._boostedFlag);
        source._pageblockMt.CopyTo(_pageblockMt, 0);
        _freeLists.CopyFrom(source._freeLists, links: false);
        _maxOrderLists.CopyFrom(source._maxOrderLists, links: true);
        source._nrFree.CopyTo(_nrFree, 0);
        source._nrFreeByType.CopyTo(_nrFreeByType, 0);
        source._events.CopyTo(_events, 0);
        source._allocsByOrder.CopyTo(_allocsByOrder, 0);
        source._freesByOrder.CopyTo(_freesByOrder, 0);
        _freePages = source._freePages;
        _freeHighatomicPages = source._freeHighatomicPages;
        _reservedHighatomic = source._reservedHighatomic;
        _belowHigh = source._belowHigh;
        _hwPoisonLeaked = source._hwPoisonLeaked;
        _hwPoisonInUse = source._hwPoisonInUse;
        for (var cpu = 0; cpu < _pcp.Length; cpu++)
        {
            _pcp[cpu].CopyFrom(source._pcp[cpu]);
        }
        ZoneLock.CopyCountersFrom(source.ZoneLock);
        RefLock.CopyCountersFrom(source.RefLock);
    }
}
