namespace PageAlloc.Domain.Model;

/// <summary>
/// What kind of request was refused. Each kind is a condition the kernel would WARN or BUG on
/// (or silently corrupt memory for); PageAlloc detects it before changing anything.
/// </summary>
public enum PageErrorKind
{
    /// <summary>order above MAX_PAGE_ORDER, or negative.</summary>
    InvalidOrder,

    /// <summary>A cpu number the machine does not have.</summary>
    InvalidCpu,

    /// <summary>An unknown __GFP_ name, or a combination gfp_zone() rejects.</summary>
    InvalidGfp,

    /// <summary>A pfn or range not inside the zone named.</summary>
    OutOfZone,

    /// <summary>A pfn not aligned to 1 &lt;&lt; order.</summary>
    Misaligned,

    /// <summary>A count or length that is zero, negative or too large.</summary>
    InvalidLength,

    /// <summary>The page is free (in the buddy or on a pcp list): a double free or use after free.</summary>
    PageFree,

    /// <summary>The page is allocated but not the head of an allocation (a tail page).</summary>
    NotHead,

    /// <summary>The order given is not the order the block was allocated with.</summary>
    WrongOrder,

    /// <summary>A compound page where order-0 pages are required (split_page, free_contig_range).</summary>
    CompoundPage,

    /// <summary>A non-split order &gt; 0 block where order-0 pages are required.</summary>
    NotSplit,

    /// <summary>put_page would free a non-compound order &gt; 0 block as order 0, leaking its tails.</summary>
    NonCompoundPut,

    /// <summary>The page carries PG_hwpoison and cannot be used this way.</summary>
    HwPoisoned,

    /// <summary>The allocation failed: watermarks not met or no free block of that order.</summary>
    OutOfMemory,

    /// <summary>The allocation would take its memory cgroup past memory.max (the charge failed).</summary>
    MemcgMax,

    /// <summary>The page is charged to another memory cgroup than the caller's (PageAlloc's access rule, not the kernel's).</summary>
    NotOwner,

    /// <summary>Imported free lists do not fit the zone (too many pages, pageblocks, or blocks of a type to place without merging).</summary>
    ImportDoesNotFit,

    /// <summary>fail_page_alloc failed the allocation on purpose (fault injection), before the allocator ran.</summary>
    InjectedFailure,

    /// <summary>-EBUSY: a page of a contiguous range is in use (and cannot be migrated here), or its pageblocks are isolated already.</summary>
    Busy,

    /// <summary>The page is the system's (page cache or anon, on an LRU list): only reclaim frees it and only migration moves it.</summary>
    LruPage,
}

/// <summary>A refused operation: the kind, and a sentence that says what was wrong.</summary>
public sealed record PageError(PageErrorKind Kind, string Detail)
{
    public override string ToString() => $"{Kind}: {Detail}";
}

/// <summary>The outcome of a domain operation: a value, or a <see cref="PageError"/>. Never both.</summary>
public readonly struct PageResult<T>
{
    private readonly T? _value;

    private PageResult(T? value, PageError? error)
    {
        _value = value;
        Error = error;
    }

    public PageError? Error { get; }

    public bool IsSuccess => Error is null;

    public T Value => Error is null ? _value! : throw new InvalidOperationException($"No value: {Error}");

    public static implicit operator PageResult<T>(T value) => new(value, null);

    public static implicit operator PageResult<T>(PageError error) => new(default, error);
}
