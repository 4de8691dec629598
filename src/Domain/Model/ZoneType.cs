namespace PageAlloc.Domain.Model;

/// <summary>
/// enum zone_type for x86-64 (CONFIG_ZONE_DMA, CONFIG_ZONE_DMA32, no HIGHMEM). ZONE_DEVICE is left
/// out: it never holds buddy pages, and PageAlloc models a kernel without CONFIG_ZONE_DEVICE.
/// </summary>
public enum ZoneType
{
    Dma = 0,
    Dma32 = 1,
    Normal = 2,
    Movable = 3,
}

public static class ZoneTypes
{
    public const int Count = 4;

    /// <summary>zone_names[].</summary>
    public static string Name(ZoneType type) => type switch
    {
        ZoneType.Dma => "DMA",
        ZoneType.Dma32 => "DMA32",
        ZoneType.Normal => "Normal",
        _ => "Movable",
    };

    public static bool TryParse(string name, out ZoneType type)
    {
        foreach (var t in Enum.GetValues<ZoneType>())
        {
            if (string.Equals(Name(t), name, StringComparison.OrdinalIgnoreCase))
            {
                type = t;
                return true;
            }
        }
        type = default;
        return false;
    }

    /// <summary>sysctl_lowmem_reserve_ratio[] defaults: 256, 256, 32, 0.</summary>
    public static int LowmemReserveRatio(ZoneType type) => type switch
    {
        ZoneType.Dma => 256,
        ZoneType.Dma32 => 256,
        ZoneType.Normal => 32,
        _ => 0,
    };
}
