using System.Globalization;
using System.Runtime.CompilerServices;

namespace PageAlloc.Domain.Replay;

/// <summary>The kmem events a replay reads.</summary>
public enum KmemEvent
{
    Alloc,
    AllocZoneLocked,
    Free,
    FreeBatched,
    PcpuDrain,
    Extfrag,
}

/// <summary>One kmem event of a real trace: the cpu it ran on and the fields the replay uses.</summary>
/// <param name="Flag">percpu_refill (zone_locked), change_ownership (extfrag).</param>
/// <param name="FallbackMigrateType">extfrag: the migratetype of the block taken.</param>
/// <param name="Time">The event's timestamp in seconds, as the tool printed it.</param>
public readonly record struct KmemRecord(KmemEvent Event, int Cpu, long Pfn, int Order, string? Gfp, int MigrateType, bool Flag, int FallbackMigrateType = 0, double Time = 0);

/// <summary>
/// Reads kmem tracepoint lines as tools print them: `perf script` ("comm pid [cpu] time: kmem:event:
/// fields", the comm may hold spaces), ftrace's trace and trace_pipe ("comm-pid [cpu] flags time:
/// event: fields") and `trace-cmd report` ("comm-pid [cpu] time: event: fields"). pfn is read in the
/// v6.x hex spelling (pfn=0x1a2b) and the older decimal one (pfn=6699).
/// </summary>
/// <remarks>
/// A replay reads millions of lines, so the line is scanned by hand, without a regular expression
/// and without a string per field. It accepts exactly what the regular expression it replaced did
/// (tests/Unit keeps that one as the reference and checks the two agree), with .NET's Unicode
/// classes: <c>\[(?&lt;cpu&gt;\d+)\]\s+(?:[\w.]{4,6}\s+)?(?&lt;time&gt;\d+\.\d+):\s+(?:kmem:)?(?&lt;event&gt;mm_page_\w+):\s+(?&lt;fields&gt;.*)$</c>,
/// unanchored (the leftmost '[' where the shape holds), then <c>(?&lt;key&gt;\w+)=(?&lt;value&gt;\S+)</c>
/// over the fields; \d is a Unicode decimal digit, \s char.IsWhiteSpace, \w a letter, a non-spacing
/// mark, a decimal digit or a connector. Numbers are read by the same BCL parsers as before, so a
/// field reads as its type exactly when it did.
/// </remarks>
public static class KmemTraceParser
{
    public static bool TryParse(string line, out KmemRecord record) => TryParse(line.AsSpan(), null, out record);

    /// <summary>
    /// Reads one line (without its '\n'). <paramref name="spellings"/>, when given, hands out one string
    /// per distinct gfp_flags spelling instead of a new one per event.
    /// </summary>
    public static bool TryParse(ReadOnlySpan<char> line, GfpSpellings? spellings, out KmemRecord record)
    {
        record = default;
        for (var from = 0; from < line.Length;)
        {
            var open = line[from..].IndexOf('[');
            if (open < 0)
            {
                return false;
            }
            open += from;
            if (Shape(line, open, out var shape))
            {
                return Fields(line, shape, spellings, out record);
            }
            from = open + 1;
        }
        return false;
    }

    /// <summary>Where the parts of a line of the kmem shape are: (start, length) of each.</summary>
    private struct LineShape
    {
        public Range Cpu;
        public Range Time;
        public Range Event;
        public Range Fields;
    }

    /// <summary>Whether the line has the kmem shape from the '[' at <paramref name="open"/>, and where its parts are.</summary>
    private static bool Shape(ReadOnlySpan<char> line, int open, out LineShape shape)
    {
        shape = default;
        var p = Digits(line, open + 1);
        if (p == open + 1 || p >= line.Length || line[p] != ']')
        {
            return false;
        }
        shape.Cpu = (open + 1)..p;
        var afterCpu = Spaces(line, p + 1);
        if (afterCpu == p + 1)
        {
            return false;
        }
        // ftrace's flags column ("d..2."): four to six of [\w.] and whitespace; when what follows them
        // does not read, the regular expression tried again without them, and so does this.
        var flags = afterCpu;
        while (flags < line.Length && (IsWordChar(line[flags]) || line[flags] == '.'))
        {
            flags++;
        }
        if (flags - afterCpu is >= 4 and <= 6 && flags < line.Length && IsSpace(line[flags])
            && Rest(line, Spaces(line, flags), ref shape))
        {
            return true;
        }
        return Rest(line, afterCpu, ref shape);
    }

    /// <summary>The shape from the timestamp on: "time: [kmem:]mm_page_event: fields" to the end of the line.</summary>
    private static bool Rest(ReadOnlySpan<char> line, int p, ref LineShape shape)
    {
        var start = p;
        p = Digits(line, p);
        if (p == start || p >= line.Length || line[p] != '.')
        {
            return false;
        }
        var fraction = p + 1;
        p = Digits(line, fraction);
        if (p == fraction || p >= line.Length || line[p] != ':')
        {
            return false;
        }
        shape.Time = start..p;
        var afterTime = Spaces(line, p + 1);
        if (afterTime == p + 1)
        {
            return false;
        }
        p = afterTime;
        if (line[p..].StartsWith("kmem:", StringComparison.Ordinal))
        {
            p += "kmem:".Length;
        }
        if (!line[p..].StartsWith("mm_page_", StringComparison.Ordinal))
        {
            return false;
        }
        var eventStart = p;
        var name = p + "mm_page_".Length;
        p = Word(line, name);
        if (p == name || p >= line.Length || line[p] != ':')
        {
            return false;
        }
        shape.Event = eventStart..p;
        var fields = Spaces(line, p + 1);
        if (fields == p + 1)
        {
            return false;
        }
        // ".*$": the fields run to the end, or to a '\n' that ends the text (a line from a reader has none).
        var newline = line[fields..].IndexOf('\n');
        if (newline >= 0 && fields + newline != line.Length - 1)
        {
            return false;
        }
        shape.Fields = fields..(newline < 0 ? line.Length : fields + newline);
        return true;
    }

    private static bool Fields(ReadOnlySpan<char> line, LineShape shape, GfpSpellings? spellings, out KmemRecord record)
    {
        record = default;
        KmemEvent? kind = line[shape.Event] switch
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
        var v = new FieldValues { Pfn = -1 };
        var fields = line[shape.Fields];
        for (var p = 0; p < fields.Length;)
        {
            // "key=value": a run of \w then '=' then a run of non-whitespace. A run of \w not so
            // followed is no key, and neither is any suffix of it: the search goes on after it.
            if (!IsWordChar(fields[p]))
            {
                p++;
                continue;
            }
            var keyStart = p;
            p = Word(fields, p);
            if (p + 1 >= fields.Length || fields[p] != '=' || IsSpace(fields[p + 1]))
            {
                continue;
            }
            var valueStart = p + 1;
            p = NonSpaces(fields, valueStart + 1);
            if (!Field(fields[keyStart..(valueStart - 1)], fields[valueStart..p], spellings, ref v))
            {
                return false; // a field that does not read as its type: not a kmem event after all
            }
        }
        // Numbers past what they can be (a cpu beyond int, a pfn at or past 2^40, a time beyond double): not a kmem event either.
        if (v.Pfn is < 0 or >= Model.PageAllocConstants.MaxPfn
            || !Int(line[shape.Cpu], NumberStyles.None, out var cpu)
            || !Seconds(line[shape.Time], out var time)
            || !double.IsFinite(time))
        {
            return false;
        }
        record = new KmemRecord(e, cpu, v.Pfn, v.Order, v.Gfp, v.MigrateType, v.Flag, v.FallbackMigrateType, time);
        return true;
    }

    /// <summary>The fields read so far; a field met again replaces what it read before, as it did.</summary>
    private struct FieldValues
    {
        public long Pfn;
        public int Order;
        public int MigrateType;
        public int FallbackMigrateType;
        public string? Gfp;
        public bool Flag;
    }

    // Not inlined into the line's loop: the scanning loops stay in registers (inlined, the JIT had
    // spilled their positions to the stack, at three times the cost per character).
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static bool Field(ReadOnlySpan<char> key, ReadOnlySpan<char> value, GfpSpellings? spellings, ref FieldValues v) => key switch
    {
        "pfn" => value.StartsWith("0x", StringComparison.Ordinal) ? Hex(value[2..], out v.Pfn) : Decimal(value, NumberStyles.None, out v.Pfn),
        "order" or "alloc_order" => Int(value, NumberStyles.None, out v.Order) && v.Order <= 10,
        "migratetype" or "alloc_migratetype" => Int(value, NumberStyles.AllowLeadingSign, out v.MigrateType),
        "gfp_flags" => (v.Gfp = spellings is null ? value.ToString() : spellings.Get(value)) is not null,
        "percpu_refill" or "change_ownership" => (v.Flag = value is "1") || value is "0",
        "fallback_migratetype" => Int(value, NumberStyles.AllowLeadingSign, out v.FallbackMigrateType),
        _ => true,
    };

    // The numbers: short runs of ASCII digits (all a trace holds) are read here, anything else by the
    // BCL parser the regular expression's code called, so that what reads, and as what, is unchanged.

    /// <summary>int.TryParse(value, styles, InvariantCulture), for NumberStyles.None or AllowLeadingSign: the same syntax as a long, in int's range.</summary>
    private static bool Int(ReadOnlySpan<char> value, NumberStyles styles, out int result)
    {
        var ok = Decimal(value, styles, out var wide) && wide is >= int.MinValue and <= int.MaxValue;
        result = ok ? (int)wide : 0;
        return ok;
    }

    /// <summary>long.TryParse(value, styles, InvariantCulture).</summary>
    private static bool Decimal(ReadOnlySpan<char> value, NumberStyles styles, out long result)
    {
        if (value.Length is > 0 and <= 18 && !value.ContainsAnyExceptInRange('0', '9'))
        {
            result = 0;
            foreach (var c in value)
            {
                result = result * 10 + (c - '0');
            }
            return true;
        }
        return long.TryParse(value, styles, CultureInfo.InvariantCulture, out result);
    }

    /// <summary>long.TryParse(value, AllowHexSpecifier, InvariantCulture): at most 15 hex digits cannot reach the sign bit.</summary>
    private static bool Hex(ReadOnlySpan<char> value, out long result)
    {
        if (value.Length is > 0 and <= 15)
        {
            result = 0;
            foreach (var c in value)
            {
                var digit = HexDigit(c);
                if (digit < 0)
                {
                    return long.TryParse(value, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out result);
                }
                result = result << 4 | (long)digit;
            }
            return true;
        }
        return long.TryParse(value, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out result);
    }

    private static int HexDigit(char c) => c switch
    {
        >= '0' and <= '9' => c - '0',
        >= 'a' and <= 'f' => c - 'a' + 10,
        >= 'A' and <= 'F' => c - 'A' + 10,
        _ => -1,
    };

    private static ReadOnlySpan<double> PowersOfTen => [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15];

    /// <summary>
    /// double.TryParse(value, AllowDecimalPoint, InvariantCulture) of "digits.digits". With at most 15
    /// ASCII digits in all, the digits as an integer and the power of ten are both exact doubles, so
    /// their quotient is the correctly rounded value, which is what double.TryParse returns (Clinger's
    /// fast path); any other spelling goes to double.TryParse itself.
    /// </summary>
    private static bool Seconds(ReadOnlySpan<char> value, out double result)
    {
        var point = value.IndexOf('.');
        if (value.Length <= 16 && point > 0 && point < value.Length - 1)
        {
            long digits = 0;
            var ascii = true;
            for (var i = 0; i < value.Length; i++)
            {
                if (i == point)
                {
                    continue;
                }
                var d = value[i] - '0';
                ascii &= (uint)d <= 9;
                digits = digits * 10 + d;
            }
            if (ascii)
            {
                result = digits / PowersOfTen[value.Length - 1 - point];
                return true;
            }
        }
        return double.TryParse(value, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out result);
    }

    /// <summary>The end of the run of \d (Unicode decimal digits, as .NET's regular expressions have them) from <paramref name="p"/>.</summary>
    private static int Digits(ReadOnlySpan<char> line, int p)
    {
        while (p < line.Length && char.IsDigit(line[p]))
        {
            p++;
        }
        return p;
    }

    // The classes of the ASCII characters, looked up; any other character is classified by char.IsWhiteSpace
    // (\s, as .NET's regular expressions have it) or by its Unicode category (\w).
    private const byte SpaceClass = 1, WordClass = 2;

    // 1: \t \n \v \f \r and space; 2: 0-9 A-Z _ a-z. (tests/Unit checks it against char.IsWhiteSpace and the regex's \w.)
    private static ReadOnlySpan<byte> AsciiClass =>
    [
        0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 0, 0, 0, 0, 0, 0,
        0, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 0, 0, 0, 0, 2,
        0, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 0, 0, 0, 0, 0,
    ];

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool IsSpace(char c) => c < 128 ? (AsciiClass[c] & SpaceClass) != 0 : char.IsWhiteSpace(c);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool IsWordChar(char c) => c < 128 ? (AsciiClass[c] & WordClass) != 0 : IsWord(c);

    /// <summary>The end of the run of \s from <paramref name="p"/>: perf script pads its columns with runs of spaces, skipped vectorised.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static int Spaces(ReadOnlySpan<char> line, int p)
    {
        if (p + 1 < line.Length && line[p] == ' ' && line[p + 1] == ' ')
        {
            var end = line[p..].IndexOfAnyExcept(' ');
            p = end < 0 ? line.Length : p + end;
        }
        while (p < line.Length && IsSpace(line[p]))
        {
            p++;
        }
        return p;
    }

    /// <summary>The end of the run of \S from <paramref name="p"/>.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static int NonSpaces(ReadOnlySpan<char> line, int p)
    {
        while (p < line.Length && !IsSpace(line[p]))
        {
            p++;
        }
        return p;
    }

    /// <summary>The end of the run of \w from <paramref name="p"/>.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static int Word(ReadOnlySpan<char> line, int p)
    {
        while (p < line.Length && IsWordChar(line[p]))
        {
            p++;
        }
        return p;
    }

    /// <summary>.NET's \w beyond ASCII: a letter (L), a non-spacing mark (Mn), a decimal digit (Nd) or a connector (Pc).</summary>
    private static bool IsWord(char c)
    {
        const int word = 1 << (int)UnicodeCategory.UppercaseLetter | 1 << (int)UnicodeCategory.LowercaseLetter
            | 1 << (int)UnicodeCategory.TitlecaseLetter | 1 << (int)UnicodeCategory.ModifierLetter | 1 << (int)UnicodeCategory.OtherLetter
            | 1 << (int)UnicodeCategory.NonSpacingMark | 1 << (int)UnicodeCategory.DecimalDigitNumber | 1 << (int)UnicodeCategory.ConnectorPunctuation;
        return (word & 1 << (int)CharUnicodeInfo.GetUnicodeCategory(c)) != 0;
    }
}

/// <summary>
/// The gfp_flags spellings a trace holds, one string each: a workload uses a handful of masks, so a
/// replay need not make a string per event. At most <paramref name="capacity"/> are kept, so that a
/// trace of made-up spellings cannot grow it; past that each is a new string, as before.
/// </summary>
public sealed class GfpSpellings(int capacity = 256)
{
    private readonly Dictionary<string, string> _names = new(StringComparer.Ordinal);

    /// <summary>The string spelled so.</summary>
    public string Get(ReadOnlySpan<char> spelling)
    {
        var lookup = _names.GetAlternateLookup<ReadOnlySpan<char>>();
        if (lookup.TryGetValue(spelling, out var name))
        {
            return name;
        }
        name = spelling.ToString();
        if (_names.Count < capacity)
        {
            _names.Add(name, name);
        }
        return name;
    }
}
