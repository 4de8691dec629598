using System.Globalization;
using System.Text.RegularExpressions;
using PageAlloc.Domain.Replay;

namespace PageAlloc.Tests.Unit.Reference;

// The kmem line parser as it was before issue 27 (two regular expressions, a string per field), kept
// here only, as the reference the hand-written KmemTraceParser is held to: same lines accepted, same records.
/// <summary>
/// Reads kmem tracepoint lines as tools print them: `perf script` ("comm pid [cpu] time: kmem:event:
/// fields", the comm may hold spaces), ftrace's trace and trace_pipe ("comm-pid [cpu] flags time:
/// event: fields") and `trace-cmd report` ("comm-pid [cpu] time: event: fields"). pfn is read in the
/// v6.x hex spelling (pfn=0x1a2b) and the older decimal one (pfn=6699).
/// </summary>
internal static partial class RegexKmemTraceParser
{
    [GeneratedRegex(@"\[(?<cpu>\d+)\]\s+(?:[\w.]{4,6}\s+)?(?<time>\d+\.\d+):\s+(?:kmem:)?(?<event>mm_page_\w+):\s+(?<fields>.*)$", RegexOptions.CultureInvariant)]
    private static partial Regex Line();

    [GeneratedRegex(@"(?<key>\w+)=(?<value>\S+)", RegexOptions.CultureInvariant)]
    private static partial Regex Field();

    public static bool TryParse(string line, out KmemRecord record)
    {
        record = default;
        var m = Line().Match(line);
        if (!m.Success)
        {
            return false;
        }
        KmemEvent? kind = m.Groups["event"].Value switch
        {
            "mm_page_alloc" => KmemEvent.Alloc,
            "mm_page_alloc_zone_locked" => KmemEvent.AllocZoneLocked,
            "mm_page_free" => KmemEvent.Free,
            "mm_page_free_batched" => KmemEvent.FreeBatched,
            "mm_page_pcpu_drain" => KmemEvent.PcpuDrain,
            "mm_page_alloc_extfrag" => KmemEvent.Extfrag,
            _ => null,
        };
        if (kind is not { } e)
        {
            return false;
        }
        long pfn = -1;
        int order = 0, mt = 0, fallbackMt = 0;
        string? gfp = null;
        var refill = false;
        foreach (Match f in Field().Matches(m.Groups["fields"].Value))
        {
            var value = f.Groups["value"].Value;
            var ok = f.Groups["key"].Value switch
            {
                "pfn" => value.StartsWith("0x", StringComparison.Ordinal)
                    ? long.TryParse(value.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out pfn)
                    : long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out pfn),
                "order" or "alloc_order" => int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out order) && order <= 10,
                "migratetype" or "alloc_migratetype" => int.TryParse(value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out mt),
                "gfp_flags" => (gfp = value) is not null,
                "percpu_refill" or "change_ownership" => (refill = value == "1") || value == "0",
                "fallback_migratetype" => int.TryParse(value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out fallbackMt),
                _ => true,
            };
            if (!ok)
            {
                return false; // a field that does not read as its type: not a kmem event after all
            }
        }
        // Numbers past what they can be (a cpu beyond int, a pfn at or past 2^40, a time beyond double): not a kmem event either.
        if (pfn is < 0 or >= PageAlloc.Domain.Model.PageAllocConstants.MaxPfn
            || !int.TryParse(m.Groups["cpu"].ValueSpan, NumberStyles.None, CultureInfo.InvariantCulture, out var cpu)
            || !double.TryParse(m.Groups["time"].ValueSpan, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var time)
            || !double.IsFinite(time))
        {
            return false;
        }
        record = new KmemRecord(e, cpu, pfn, order, gfp, mt, refill, fallbackMt, time);
        return true;
    }
}
