using System.Globalization;
using System.Text.RegularExpressions;

namespace PageAlloc.Domain.Import;

/// <summary>A zone's size as a real machine's /proc/zoneinfo gives it: its managed pages (those the buddy allocator has).</summary>
public static partial class ZoneInfoSize
{
    /// <summary>The zone's "managed" pages in a zoneinfo text, or null when the text has no such zone.</summary>
    public static long? ManagedPages(string text, string zone, int node = 0)
    {
        var inZone = false;
        foreach (var line in text.Split('\n'))
        {
            if (Header().Match(line) is { Success: true } h)
            {
                inZone = h.Groups["node"].Value == node.ToString(CultureInfo.InvariantCulture)
                    && string.Equals(h.Groups["zone"].Value, zone, StringComparison.OrdinalIgnoreCase);
            }
            else if (inZone && Managed().Match(line) is { Success: true } m)
            {
                return long.Parse(m.Groups["pages"].Value, CultureInfo.InvariantCulture);
            }
        }
        return null;
    }

    [GeneratedRegex(@"^Node (?<node>\d+), zone\s+(?<zone>\S+)\s*$", RegexOptions.CultureInvariant)]
    private static partial Regex Header();

    [GeneratedRegex(@"^\s+managed\s+(?<pages>\d+)\s*$", RegexOptions.CultureInvariant)]
    private static partial Regex Managed();
}
