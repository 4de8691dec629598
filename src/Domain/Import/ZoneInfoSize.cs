using System.Globalization;
using System.Text.RegularExpressions;

namespace PageAlloc.Domain.Import;

/// <summary>A zone's size as a real machine's /proc/zoneinfo gives it: its managed pages (those the buddy allocator has).</summary>
public static partial class ZoneInfoSize
{
    /// <summary>
    /// The zone's "managed" pages in a zoneinfo text, or null when the text has no such zone; a count
    /// that is no long (20 digits) is refused with <see cref="InvalidImportException"/> (one that is
    /// too large for a zone is the caller's to refuse, as a zone that does not fit).
    /// </summary>
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
                var digits = m.Groups["pages"].Value;
                return long.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out var pages) ? pages
                    : throw new InvalidImportException($"The zoneinfo's managed pages of node {node} zone {zone}, {digits}, is more than any zone holds (at most {Model.MachineConfig.MaxZonePages} pages).", digits);
            }
        }
        return null;
    }

    [GeneratedRegex(@"^Node (?<node>\d+), zone\s+(?<zone>\S+)\s*$", RegexOptions.CultureInvariant)]
    private static partial Regex Header();

    [GeneratedRegex(@"^\s+managed\s+(?<pages>\d+)\s*$", RegexOptions.CultureInvariant)]
    private static partial Regex Managed();
}
