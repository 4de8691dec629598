namespace PageAlloc.Domain.Model;

/// <summary>
/// enum migratetype (include/linux/mmzone.h) for a kernel built without CONFIG_CMA and with
/// CONFIG_MEMORY_ISOLATION, which is what this machine's /proc/pagetypeinfo shows.
/// </summary>
public enum MigrateType : byte
{
    Unmovable = 0,
    Movable = 1,
    Reclaimable = 2,

    /// <summary>MIGRATE_HIGHATOMIC = MIGRATE_PCPTYPES.</summary>
    HighAtomic = 3,
    Isolate = 4,
}

public static class MigrateTypes
{
    /// <summary>MIGRATE_TYPES.</summary>
    public const int Count = 5;

    /// <summary>MIGRATE_PCPTYPES: the types that have pcp lists.</summary>
    public const int PcpTypes = 3;

    /// <summary>migratetype_names[], as printed in /proc/pagetypeinfo.</summary>
    public static string Name(MigrateType mt) => mt switch
    {
        MigrateType.Unmovable => "Unmovable",
        MigrateType.Movable => "Movable",
        MigrateType.Reclaimable => "Reclaimable",
        MigrateType.HighAtomic => "HighAtomic",
        _ => "Isolate",
    };

    /// <summary>The type whose migratetype_names[] entry this is ("Movable"), as pagetypeinfo prints it.</summary>
    public static bool TryParse(string name, out MigrateType mt)
    {
        foreach (var candidate in Enum.GetValues<MigrateType>())
        {
            if (Name(candidate) == name)
            {
                mt = candidate;
                return true;
            }
        }
        mt = default;
        return false;
    }

    /// <summary>fallbacks[][] (mm/page_alloc.c): the types a request may take pages from, in order.</summary>
    public static ReadOnlySpan<MigrateType> Fallbacks(MigrateType mt) => mt switch
    {
        MigrateType.Unmovable => [MigrateType.Reclaimable, MigrateType.Movable],
        MigrateType.Movable => [MigrateType.Reclaimable, MigrateType.Unmovable],
        MigrateType.Reclaimable => [MigrateType.Unmovable, MigrateType.Movable],
        _ => [],
    };

    /// <summary>migratetype_is_mergeable(): only the pcp types merge across pageblocks.</summary>
    public static bool IsMergeable(MigrateType mt) => (int)mt < PcpTypes;
}
