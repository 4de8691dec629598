using PageAlloc.Domain.Model;

namespace PageAlloc.Domain.Snapshots;

/// <summary>
/// The machine's own <see cref="MachineConfig"/> as the snapshot's configuration section holds it
/// (uncompressed, after the header, under the header's checksum), so that a reader can check it and
/// bound what the body may make it allocate before it decompresses a byte. Every field, in
/// declaration order (the page cache's from version 2 on); see docs/snapshot-format.md.
/// </summary>
internal static class SnapshotConfig
{
    /// <summary>The largest configuration section a reader accepts: far above any real one (65534 memcgs with 200-byte names).</summary>
    public const int MaxBytes = 16 << 20;

    /// <summary>The longest zone or memcg name read.</summary>
    private const int MaxNameBytes = 4096;

    public static byte[] Encode(MachineConfig config, ushort version = SnapshotHeader.FormatVersion)
    {
        using var buffer = new MemoryStream();
        var w = new SnapshotWriter(buffer);
        w.WriteInt32(config.Cpus);
        w.WriteBool(config.MinFreeKbytes.HasValue);
        w.WriteInt64(config.MinFreeKbytes ?? 0);
        w.WriteBool(config.TransparentHugepages);
        w.WriteInt32(config.Nodes.Count);
        foreach (var node in config.Nodes)
        {
            w.WriteInt32(node.Id);
            w.WriteBool(node.Cpus.HasValue);
            w.WriteInt32(node.Cpus ?? 0);
            w.WriteBool(node.Distances is not null);
            w.WriteInt32(node.Distances?.Count ?? 0);
            foreach (var d in node.Distances ?? [])
            {
                w.WriteInt32(d);
            }
            w.WriteInt32(node.Zones.Count);
            foreach (var zone in node.Zones)
            {
                w.WriteString(zone.Name);
                w.WriteInt64(zone.StartPfn);
                w.WriteInt64(zone.Pages);
            }
        }
        w.WriteInt32(config.Memcgs.Count);
        foreach (var memcg in config.Memcgs)
        {
            w.WriteString(memcg.Name);
            w.WriteInt64(memcg.MaxPages);
        }
        if (version >= 2)
        {
            w.WriteInt64(config.PageCache.Pages);
            w.WriteInt64(config.PageCache.ActivePages);
        }
        w.Flush();
        return buffer.ToArray();
    }

    /// <summary>
    /// The configuration the section holds. Counts are bounded by the bytes left (each element takes
    /// at least one), so a hostile count allocates nothing it could not fill. Not validated here.
    /// </summary>
    public static MachineConfig Decode(byte[] section, ushort version = SnapshotHeader.FormatVersion)
    {
        using var stream = new MemoryStream(section, writable: false);
        var r = new SnapshotReader(stream, section.Length, "the configuration section");
        var config = new MachineConfig { Cpus = r.ReadInt32() };
        var hasMinFree = r.ReadBool("MinFreeKbytes's presence");
        var minFree = r.ReadInt64();
        config.MinFreeKbytes = hasMinFree ? minFree : null;
        config.TransparentHugepages = r.ReadBool("TransparentHugepages");
        var nodes = r.ReadInt32("the number of nodes", 0, r.Remaining);
        for (var n = 0; n < nodes; n++)
        {
            var node = new NodeConfig { Id = r.ReadInt32() };
            var hasCpus = r.ReadBool($"node {node.Id}'s Cpus' presence");
            var cpus = r.ReadInt32();
            node.Cpus = hasCpus ? cpus : null;
            var hasDistances = r.ReadBool($"node {node.Id}'s Distances' presence");
            var distances = r.ReadInt32($"node {node.Id}'s number of distances", 0, r.Remaining / 4);
            var row = new List<int>(distances);
            for (var i = 0; i < distances; i++)
            {
                row.Add(r.ReadInt32());
            }
            node.Distances = hasDistances ? row : null;
            var zones = r.ReadInt32($"node {node.Id}'s number of zones", 0, r.Remaining);
            for (var z = 0; z < zones; z++)
            {
                node.Zones.Add(new ZoneConfig
                {
                    Name = r.ReadString($"the name of zone {z} of node {node.Id}", MaxNameBytes),
                    StartPfn = r.ReadInt64(),
                    Pages = r.ReadInt64(),
                });
            }
            config.Nodes.Add(node);
        }
        var memcgs = r.ReadInt32("the number of memcgs", 0, r.Remaining);
        for (var m = 0; m < memcgs; m++)
        {
            config.Memcgs.Add(new MemcgConfig { Name = r.ReadString($"the name of memcg {m}", MaxNameBytes), MaxPages = r.ReadInt64() });
        }
        if (version >= 2)
        {
            config.PageCache = new PageCacheConfig { Pages = r.ReadInt64(), ActivePages = r.ReadInt64() };
        }
        r.ExpectEnd();
        return config;
    }
}
