using PageAlloc.Domain.Model;
using static PageAlloc.Domain.Model.PageAllocConstants;

namespace PageAlloc.Domain.Snapshots;

/// <summary>
/// The most a snapshot of a configuration can hold, worked out from the configuration alone, so
/// that a reader refuses a header that declares more before it allocates or decompresses anything:
/// a hostile snapshot makes the process allocate no more than the machine its configuration describes.
/// </summary>
internal static class SnapshotBounds
{
    /// <summary>
    /// An upper bound of the body's uncompressed length: per page its refcount, flags, order and
    /// memcg id, and one list entry at most (a page heads at most one listed block); per zone its
    /// fixed fields and pageblocks, per cpu of each zone its pcp's; the machine's sections. The
    /// constants are above what version 1 writes (a zone's fixed fields, section tags and free
    /// list lengths are 1266 bytes, a pcp's fixed fields 405, the machine's sections 90 and 16 a memcg).
    /// </summary>
    public static long MaxBodyLength(MachineConfig config)
    {
        var perPage = 4 + 1 + 1 + (config.Memcgs.Count > 0 ? 2 : 0) + 4;
        long bound = 4096 + (16L * config.Memcgs.Count);
        foreach (var zone in config.Nodes.SelectMany(n => n.Zones))
        {
            var pageblocks = ((zone.StartPfn + zone.Pages - 1) >> PageblockOrder) - (zone.StartPfn >> PageblockOrder) + 1;
            bound += 4096 + pageblocks + (zone.Pages * perPage) + (config.Cpus * 1024L);
        }
        return bound;
    }

    /// <summary>
    /// zlib's worst case for a body of this length, with room to spare: stored blocks add 5 bytes
    /// per 64 KiB and the stream 6; zlib-ng's compressBound() is within n + n/4096 + 128.
    /// </summary>
    public static long MaxCompressedLength(long bodyLength) => bodyLength + (bodyLength >> 6) + 4096;
}
