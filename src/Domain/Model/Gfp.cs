namespace PageAlloc.Domain.Model;

/// <summary>The __GFP_* bits (include/linux/gfp_types.h), with the kernel's bit numbers.</summary>
[Flags]
public enum GfpFlags : uint
{
    None = 0,
    Dma = 1u << 0,
    HighMem = 1u << 1,
    Dma32 = 1u << 2,
    Movable = 1u << 3,
    Reclaimable = 1u << 4,
    High = 1u << 5,
    Io = 1u << 6,
    Fs = 1u << 7,
    Zero = 1u << 8,
    DirectReclaim = 1u << 10,
    KswapdReclaim = 1u << 11,
    Write = 1u << 12,
    NoWarn = 1u << 13,
    RetryMayFail = 1u << 14,
    NoFail = 1u << 15,
    NoRetry = 1u << 16,
    MemAlloc = 1u << 17,
    Comp = 1u << 18,
    NoMemAlloc = 1u << 19,
    HardWall = 1u << 20,
    ThisNode = 1u << 21,
    Account = 1u << 22,
    ZeroTags = 1u << 23,
    SkipZero = 1u << 24,
    SkipKasan = 1u << 25,
    NoLockdep = 1u << 26,
}

/// <summary>
/// GFP masks in the kernel's own spelling: parsing "GFP_KERNEL|__GFP_COMP" and printing a mask the
/// way the mm tracepoints do (show_gfp_flags in include/trace/events/mmflags.h).
/// </summary>
public static class Gfp
{
    public const GfpFlags Reclaim = GfpFlags.DirectReclaim | GfpFlags.KswapdReclaim;
    public const GfpFlags Atomic = GfpFlags.High | GfpFlags.KswapdReclaim;
    public const GfpFlags Kernel = Reclaim | GfpFlags.Io | GfpFlags.Fs;
    public const GfpFlags KernelAccount = Kernel | GfpFlags.Account;
    public const GfpFlags NoWait = GfpFlags.KswapdReclaim | GfpFlags.NoWarn;
    public const GfpFlags NoIo = Reclaim;
    public const GfpFlags NoFs = Reclaim | GfpFlags.Io;
    public const GfpFlags User = Reclaim | GfpFlags.Io | GfpFlags.Fs | GfpFlags.HardWall;
    public const GfpFlags HighUser = User | GfpFlags.HighMem;
    public const GfpFlags HighUserMovable = HighUser | GfpFlags.Movable | GfpFlags.SkipKasan;
    public const GfpFlags TransHugeLight =
        (HighUserMovable | GfpFlags.Comp | GfpFlags.NoMemAlloc | GfpFlags.NoWarn) & ~Reclaim;
    public const GfpFlags TransHuge = TransHugeLight | GfpFlags.DirectReclaim;

    /// <summary>__def_gfpflag_names, in the kernel's order: composites first, so printing is greedy.</summary>
    private static readonly (string Name, GfpFlags Mask)[] Names =
    [
        ("GFP_TRANSHUGE", TransHuge),
        ("GFP_TRANSHUGE_LIGHT", TransHugeLight),
        ("GFP_HIGHUSER_MOVABLE", HighUserMovable),
        ("GFP_HIGHUSER", HighUser),
        ("GFP_USER", User),
        ("GFP_KERNEL_ACCOUNT", KernelAccount),
        ("GFP_KERNEL", Kernel),
        ("GFP_NOFS", NoFs),
        ("GFP_ATOMIC", Atomic),
        ("GFP_NOIO", NoIo),
        ("GFP_NOWAIT", NoWait),
        ("GFP_DMA", GfpFlags.Dma),
        ("__GFP_HIGHMEM", GfpFlags.HighMem),
        ("GFP_DMA32", GfpFlags.Dma32),
        ("__GFP_HIGH", GfpFlags.High),
        ("__GFP_IO", GfpFlags.Io),
        ("__GFP_FS", GfpFlags.Fs),
        ("__GFP_NOWARN", GfpFlags.NoWarn),
        ("__GFP_RETRY_MAYFAIL", GfpFlags.RetryMayFail),
        ("__GFP_NOFAIL", GfpFlags.NoFail),
        ("__GFP_NORETRY", GfpFlags.NoRetry),
        ("__GFP_COMP", GfpFlags.Comp),
        ("__GFP_ZERO", GfpFlags.Zero),
        ("__GFP_NOMEMALLOC", GfpFlags.NoMemAlloc),
        ("__GFP_MEMALLOC", GfpFlags.MemAlloc),
        ("__GFP_HARDWALL", GfpFlags.HardWall),
        ("__GFP_THISNODE", GfpFlags.ThisNode),
        ("__GFP_RECLAIMABLE", GfpFlags.Reclaimable),
        ("__GFP_MOVABLE", GfpFlags.Movable),
        ("__GFP_ACCOUNT", GfpFlags.Account),
        ("__GFP_WRITE", GfpFlags.Write),
        ("__GFP_RECLAIM", Reclaim),
        ("__GFP_DIRECT_RECLAIM", GfpFlags.DirectReclaim),
        ("__GFP_KSWAPD_RECLAIM", GfpFlags.KswapdReclaim),
        ("__GFP_ZEROTAGS", GfpFlags.ZeroTags),
        ("__GFP_SKIP_ZERO", GfpFlags.SkipZero),
        ("__GFP_SKIP_KASAN", GfpFlags.SkipKasan),
        ("__GFP_NOLOCKDEP", GfpFlags.NoLockdep),
        // Spellings accepted on input only: the __GFP_ forms of the zone modifiers.
        ("__GFP_DMA", GfpFlags.Dma),
        ("__GFP_DMA32", GfpFlags.Dma32),
    ];

    private const int PrintableNames = 38;

    /// <summary>
    /// Parses a mask such as "GFP_KERNEL|__GFP_COMP". Names are case-sensitive, as in C; "0" and
    /// "none" mean no flags. Returns false with the offending name when one is unknown.
    /// </summary>
    public static bool TryParse(string text, out GfpFlags flags, out string? unknown)
    {
        flags = GfpFlags.None;
        unknown = null;
        if (string.IsNullOrWhiteSpace(text))
        {
            unknown = text ?? "";
            return false;
        }
        var rest = text.AsSpan();
        foreach (var part in rest.Split('|'))
        {
            var name = rest[part].Trim();
            if (name is "0" or "none")
            {
                continue;
            }
            var found = false;
            foreach (var (n, mask) in Names)
            {
                if (name.SequenceEqual(n))
                {
                    flags |= mask;
                    found = true;
                    break;
                }
            }
            if (!found)
            {
                unknown = name.ToString();
                flags = GfpFlags.None;
                return false;
            }
        }
        return true;
    }

    /// <summary>show_gfp_flags(): composites first, each bit printed once, "none" for 0.</summary>
    public static string Format(GfpFlags flags)
    {
        // Every allocation's answer prints its mask, and a workload uses a handful of masks: each is
        // formatted once. The cache holds at most FormattedLimit masks, so no client can fill it: a
        // slot is claimed before a mask is added (racing callers cannot overshoot, as checking the
        // dictionary's Count would let them, and Count would take every one of its locks).
        if (Formatted.TryGetValue(flags, out var text))
        {
            return text;
        }
        text = FormatUncached(flags);
        if (Interlocked.Increment(ref _formattedSlots) <= FormattedLimit)
        {
            if (!Formatted.TryAdd(flags, text))
            {
                Interlocked.Decrement(ref _formattedSlots); // another caller added this mask first
            }
        }
        else
        {
            Interlocked.Decrement(ref _formattedSlots);
        }
        return text;
    }

    /// <summary>The most masks <see cref="Format"/> keeps.</summary>
    internal const int FormattedLimit = 256;

    private static int _formattedSlots;

    /// <summary>How many masks <see cref="Format"/> keeps now (for tests).</summary>
    internal static int FormattedCount => Formatted.Count;

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<GfpFlags, string> Formatted = new();

    private static string FormatUncached(GfpFlags flags)
    {
        if (flags == GfpFlags.None)
        {
            return "none";
        }
        var parts = new List<string>();
        var left = flags;
        for (var i = 0; i < PrintableNames && left != GfpFlags.None; i++)
        {
            var (name, mask) = Names[i];
            if ((left & mask) == mask)
            {
                parts.Add(name);
                left &= ~mask;
            }
        }
        if (left != GfpFlags.None)
        {
            parts.Add($"0x{(uint)left:x}");
        }
        return string.Join('|', parts);
    }

    /// <summary>gfp_migratetype(): __GFP_MOVABLE gives Movable, __GFP_RECLAIMABLE gives Reclaimable.</summary>
    public static MigrateType MigrateTypeOf(GfpFlags flags) =>
        (flags & GfpFlags.Movable) != 0 ? MigrateType.Movable
        : (flags & GfpFlags.Reclaimable) != 0 ? MigrateType.Reclaimable
        : MigrateType.Unmovable;

    /// <summary>
    /// gfp_zone(): the highest zone a request may use. The kernel's GFP_ZONE_BAD combinations (two
    /// zone modifiers at once) are refused here, where the kernel would BUG.
    /// </summary>
    public static bool TryGetZone(GfpFlags flags, out ZoneType zone)
    {
        var dma = (flags & GfpFlags.Dma) != 0;
        var dma32 = (flags & GfpFlags.Dma32) != 0;
        var high = (flags & GfpFlags.HighMem) != 0;
        var movable = (flags & GfpFlags.Movable) != 0;
        zone = ZoneType.Normal;
        if ((dma ? 1 : 0) + (dma32 ? 1 : 0) + (high ? 1 : 0) > 1)
        {
            return false;
        }
        zone = dma ? ZoneType.Dma : dma32 ? ZoneType.Dma32 : high && movable ? ZoneType.Movable : ZoneType.Normal;
        return true;
    }
}
