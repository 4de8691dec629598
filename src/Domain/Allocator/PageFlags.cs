namespace PageAlloc.Domain.Allocator;

/// <summary>
/// The per-page flag byte: the subset of struct page state the allocator reads. Buddy and Pcp mark
/// the head of a free block (its order is in the order byte); Head and Tail mark compound pages;
/// Allocated marks the head of a live allocation, whose order is recorded as page_owner does.
/// </summary>
[Flags]
internal enum PageFlags : byte
{
    None = 0,

    /// <summary>PageBuddy: head of a block on a zone->free_area list.</summary>
    Buddy = 1 << 0,

    /// <summary>Head of a block on a per-CPU page list (the kernel keeps no flag; see docs/model.md).</summary>
    Pcp = 1 << 1,

    /// <summary>PG_head: head of a compound page.</summary>
    Head = 1 << 2,

    /// <summary>PageTail: a tail of a compound page.</summary>
    Tail = 1 << 3,

    /// <summary>PG_hwpoison.</summary>
    HwPoison = 1 << 4,

    /// <summary>Head of a live allocation (page_owner's record); the order byte holds its order.</summary>
    Allocated = 1 << 5,

    /// <summary>
    /// PG_lru: an allocated order-0 page of the system's (page cache or anon) on one of the zone's
    /// LRU lists; which one the zone's LRU map says. Only reclaim (and migration) may take it.
    /// </summary>
    Lru = 1 << 6,

    /// <summary>
    /// An LRU page compaction or alloc_contig_range() has isolated for migration: off its list, its
    /// reference held by the migration (the kernel's isolation takes a folio reference). No client
    /// call may touch it; it never outlives the call that isolated it.
    /// </summary>
    Isolated = 1 << 7,
}
