using System.Globalization;

namespace PageAlloc.Api.Contracts;

/// <summary>
/// A page frame number in a path: decimal, or 0x-prefixed hex as the kernel prints pfns
/// ("pfn=0x100000"). Minimal APIs bind it through <see cref="TryParse(string?, IFormatProvider?, out Pfn)"/>;
/// a value that does not parse is answered as the problem invalid-pfn.
/// </summary>
public readonly record struct Pfn(long Value) : IParsable<Pfn>
{
    public static bool TryParse(string? s, IFormatProvider? provider, out Pfn result)
    {
        long value = 0;
        var ok = s is not null && (s.StartsWith("0x", StringComparison.OrdinalIgnoreCase)
            ? long.TryParse(s.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out value) && value >= 0
            : long.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out value));
        result = ok ? new Pfn(value) : default;
        return ok;
    }

    public static Pfn Parse(string s, IFormatProvider? provider) =>
        TryParse(s, provider, out var pfn) ? pfn : throw new FormatException(Invalid(s));

    /// <summary>What is wrong with a text that is not a pfn.</summary>
    public static string Invalid(string? text) => $"'{text}' is not a pfn: use decimal or 0x-prefixed hex.";

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"0x{Value:x}");
}
