namespace PageAlloc.Domain.Model;

/// <summary>
/// enum lru_list (include/linux/mmzone.h), in the kernel's order: the lists an in-use page of the
/// system's sits on while it is reclaimable or movable (page cache, anon). Clients' allocations are
/// on none: they are pinned.
/// </summary>
public enum LruList : byte
{
    /// <summary>LRU_INACTIVE_ANON.</summary>
    InactiveAnon,

    /// <summary>LRU_ACTIVE_ANON.</summary>
    ActiveAnon,

    /// <summary>LRU_INACTIVE_FILE.</summary>
    InactiveFile,

    /// <summary>LRU_ACTIVE_FILE.</summary>
    ActiveFile,

    /// <summary>LRU_UNEVICTABLE.</summary>
    Unevictable,
}

public static class LruLists
{
    /// <summary>NR_LRU_LISTS.</summary>
    public const int Count = 5;

    /// <summary>The list's name as vmstat spells it after nr_ / nr_zone_ ("inactive_file").</summary>
    public static string Name(LruList lru) => lru switch
    {
        LruList.InactiveAnon => "inactive_anon",
        LruList.ActiveAnon => "active_anon",
        LruList.InactiveFile => "inactive_file",
        LruList.ActiveFile => "active_file",
        _ => "unevictable",
    };

    /// <summary>is_file_lru().</summary>
    public static bool IsFile(LruList lru) => lru is LruList.InactiveFile or LruList.ActiveFile;

    /// <summary>is_active_lru().</summary>
    public static bool IsActive(LruList lru) => lru is LruList.ActiveAnon or LruList.ActiveFile;

    /// <summary>The inactive list of an active one and the other way round (lru - LRU_ACTIVE, lru + LRU_ACTIVE).</summary>
    public static LruList Inactive(LruList active) => active - 1;
}
