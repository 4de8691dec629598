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

    /// <summary>
    /// Reads the zone's rows of a pagetypeinfo or buddyinfo text; null when the text has none for it.
    /// A count no zone can hold is refused with <see cref="InvalidImportException"/>.
    /// </summary>
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
                blocks[(int)mt] = Numbers(t.Groups["counts"].Value, line);
                found = true;
            }
            else if (ZoneRow().Match(line) is { Success: true } z && Matches(z, node, zone))
            {
                var numbers = Numbers(z.Groups["counts"].Value, line);
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

    /// <summary>
    /// The kernel prints ">100000" for a list it stopped counting: 100000 is what can be known. A count
    /// above <see cref="MachineConfig.MaxZonePages"/> no zone can hold (nor a long, at 20 digits): the
    /// row is refused, named, with <see cref="InvalidImportException"/>.
    /// </summary>
    private static long[] Numbers(string text, string row) =>
        [.. text.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(n =>
            long.TryParse(n.AsSpan().TrimStart('>'), NumberStyles.None, CultureInfo.InvariantCulture, out var count) && count <= MachineConfig.MaxZonePages
                ? count
                : throw new InvalidImportException(
                    $"The count {n} in the row '{(row.Length > 200 ? row[..200] + "..." : row)}' is more than any zone holds (at most {MachineConfig.MaxZonePages} pages).", n))];

    // Each count is digits followed by spaces or the end: one way to match a row, so a long row cannot make the match backtrack.
    [GeneratedRegex(@"^Node\s+(?<node>\d+), zone\s+(?<zone>\S+), type\s+(?<type>\S+)\s+(?<counts>>?\d+(?:\s+>?\d+){10})\s*$", RegexOptions.CultureInvariant)]
    private static partial Regex TypeRow();

    [GeneratedRegex(@"^Node\s+(?<node>\d+), zone\s+(?<zone>\S+)\s+(?<counts>\d+(?:\s+\d+)*)\s*$", RegexOptions.CultureInvariant)]
    private static partial Regex ZoneRow();
}

/// <summary>A /proc text with a number that cannot be what it says (a count past any zone, a long's 20 digits): POST /zones/{zone}/import's invalid-import.</summary>
public sealed class InvalidImportException(string message, string value) : FormatException(message)
{
    /// <summary>The number as the text spells it.</summary>
    public string Value { get; } = value;
}
