namespace PageAlloc.Domain.Snapshots;

/// <summary>
/// The four-byte tags that open each section of a snapshot's body: ASCII, stored as a
/// little-endian uint so that a hex dump shows the letters in order. A tag where another is
/// expected means the writer and reader disagree on the layout, and says where.
/// </summary>
internal enum SnapshotSection : uint
{
    /// <summary>"MACH": the machine's shape and min_free_kbytes.</summary>
    Machine = 'M' | ('A' << 8) | ('C' << 16) | ((uint)'H' << 24),

    /// <summary>"MCGS": every memcg's memory.current and memory.events max.</summary>
    Memcgs = 'M' | ('C' << 8) | ('G' << 16) | ((uint)'S' << 24),

    /// <summary>"FPAL": fail_page_alloc's attributes, counters and random state.</summary>
    FailPageAlloc = 'F' | ('P' << 8) | ('A' << 16) | ((uint)'L' << 24),

    /// <summary>"ZONE": one zone's identity, tuning, flags, counters and locks.</summary>
    Zone = 'Z' | ('O' << 8) | ('N' << 16) | ((uint)'E' << 24),

    /// <summary>"PBLK": the zone's pageblock migratetypes.</summary>
    Pageblocks = 'P' | ('B' << 8) | ('L' << 16) | ((uint)'K' << 24),

    /// <summary>"PAGE": every page's refcount, flags, order and memcg charge.</summary>
    Pages = 'P' | ('A' << 8) | ('G' << 16) | ((uint)'E' << 24),

    /// <summary>"FREE": the order of every free_area list, as block heads.</summary>
    FreeLists = 'F' | ('R' << 8) | ('E' << 16) | ((uint)'E' << 24),

    /// <summary>"PCPS": every cpu's per_cpu_pages of the zone, lists included.</summary>
    Pcps = 'P' | ('C' << 8) | ('P' << 16) | ((uint)'S' << 24),

    /// <summary>"VMSC": reclaim's vm events and each node's kswapd failures (format version 2 on).</summary>
    Vmscan = 'V' | ('M' << 8) | ('S' << 16) | ((uint)'C' << 24),

    /// <summary>"LRUS": the zone's LRU lists, as pages from head to tail, its compaction state and watermark boost (format version 2 on).</summary>
    Lru = 'L' | ('R' << 8) | ('U' << 16) | ((uint)'S' << 24),

    /// <summary>"END.": the end of the body.</summary>
    End = 'E' | ('N' << 8) | ('D' << 16) | ((uint)'.' << 24),
}

internal static class SnapshotSections
{
    /// <summary>The tag as its four letters ("ZONE"), or as hex when it is not ASCII.</summary>
    public static string Name(uint tag)
    {
        Span<char> letters = stackalloc char[4];
        for (var i = 0; i < 4; i++)
        {
            var c = (char)((tag >> (8 * i)) & 0xFF);
            if (c is < ' ' or > '~')
            {
                return $"0x{tag:x8}";
            }
            letters[i] = c;
        }
        return new string(letters);
    }
}
