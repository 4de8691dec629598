using System.Globalization;
using System.Text.RegularExpressions;
using PageAlloc.Domain.Model;
using static PageAlloc.Domain.Model.PageAllocConstants;

namespace PageAlloc.Domain.Import;

/// <summary>
/// One zone's free lists as a real machine's /proc/pagetypeinfo gives them: free blocks per
/// migratetype and order, and pageblocks per migratetype; or, from /proc/buddyinfo, free blocks per
/// order alone (then every block and pageblock is taken as Movable, the type most free memory has).
/// </summary>
public sealed partial record FreeListCounts(string Zone, long[][] FreeBlocks, long[]? Pageblocks)
{
    public long FreePages => FreeBlocks.Sum(orders => orders.Select((n, order) => n << order).Sum());

    /// <summary>Reads the zone's rows of a pagetypeinfo or buddyinfo text; null when the text has none for it.</summary>
    public static FreeListCounts? Parse(string text, string zone, int node = 0)
    {
        var blocks = Enumerable.Range(0, MigrateTypes.Count).Select(_ => new long[NrPageOrders]).ToArray();
        long[]? pageblocks = null;
        var found = false;
        string[]? blockColumns = null;
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.TrimEnd();
            if (line.StartsWith("Number of blocks type", StringComparison.Ordinal))
            {
                blockColumns = line["Number of blocks type".Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
                continue;
            }
            if (TypeRow().Match(line) is { Success: true } t && Matches(t, node, zone))
            {
                if (!MigrateTypes.TryParse(t.Groups["type"].Value, out var mt))
                {
                    continue; // CMA and types PageAlloc does not have: their free blocks cannot be placed
                }
                blocks[(int)mt] = Numbers(t.Groups["counts"].Value);
                found = true;
            }
            else if (ZoneRow().Match(line) is { Success: true } z && Matches(z, node, zone))
            {
                var numbers = Numbers(z.Groups["counts"].Value);
                if (blockColumns is not null && numbers.Length == blockColumns.Length)
                {
                    pageblocks = new long[MigrateTypes.Count];
                    for (var i = 0; i < blockColumns.Length; i++)
                    {
                        // CMA pageblocks hold movable pages: PageAlloc, which has no CMA, counts them Movable.
                        var mt = MigrateTypes.TryParse(blockColumns[i], out var known) ? known : MigrateType.Movable;
                        pageblocks[(int)mt] += numbers[i];
                    }
                }
                else if (numbers.Length == NrPageOrders && !found)
                {
                    blocks[(int)MigrateType.Movable] = numbers; // a buddyinfo line
                    found = true;
                }
            }
        }
        return found ? new FreeListCounts(zone, blocks, pageblocks) : null;
    }

    private static bool Matches(Match m, int node, string zone) =>
        m.Groups["node"].Value == node.ToString(CultureInfo.InvariantCulture) && string.Equals(m.Groups["zone"].Value, zone, StringComparison.OrdinalIgnoreCase);

    /// <summary>The kernel prints ">100000" for a list it stopped counting: 100000 is what can be known.</summary>
    private static long[] Numbers(string text) =>
        [.. text.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(n => long.Parse(n.TrimStart('>'), CultureInfo.InvariantCulture))];

    [GeneratedRegex(@"^Node\s+(?<node>\d+), zone\s+(?<zone>\S+), type\s+(?<type>\S+)\s+(?<counts>(?:>?\d+\s*){11})$", RegexOptions.CultureInvariant)]
    private static partial Regex TypeRow();

    [GeneratedRegex(@"^Node\s+(?<node>\d+), zone\s+(?<zone>\S+)\s+(?<counts>(?:\d+\s*)+)$", RegexOptions.CultureInvariant)]
    private static partial Regex ZoneRow();
}
