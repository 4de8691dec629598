using System.Text.RegularExpressions;

namespace PageAlloc.Tests.Integration;

/// <summary>
/// docs/kernel-index.md held to the code: the methods it names exist where it says, its rows are in
/// the order of the kernel names without their leading underscores, and every kernel function a
/// Domain summary begins with ("free_one_page(): ...", "__add_to_free_list() + set_buddy_order()")
/// has a row.
/// </summary>
public partial class KernelIndexTests
{
    private sealed record Row(string Text, string[] Functions, (string Type, string Method)[] Methods, string[] Files);

    private static List<Row> Rows()
    {
        var rows = new List<Row>();
        foreach (var line in File.ReadAllLines(Repository.File("docs/kernel-index.md")).Where(l => l.StartsWith("| `", StringComparison.Ordinal)))
        {
            var cells = line.Trim().Trim('|').Split('|').Select(c => c.Trim()).ToArray();
            rows.Add(new Row(line,
                [.. KernelFunction().Matches(cells[0]).Select(m => m.Groups[1].Value)],
                [.. MethodName().Matches(cells[1]).Select(m => (m.Groups[1].Value, m.Groups[2].Value))],
                [.. SourceFile().Matches(cells[2]).Select(m => m.Groups[1].Value)]));
        }
        return rows;
    }

    [Fact]
    public void EveryMethodItNames_IsDeclaredInTheFilesOfItsRow()
    {
        var rows = Rows();
        Assert.True(rows.Count > 50, $"only {rows.Count} rows were read");
        foreach (var row in rows)
        {
            Assert.NotEmpty(row.Files);
            // A file's short name is in the folder of the row's first file.
            var folder = Path.GetDirectoryName(row.Files[0])!;
            var text = string.Concat(row.Files.Select(f => File.ReadAllText(Repository.File(f.Contains('/', StringComparison.Ordinal) ? f : Path.Combine(folder, f)))));
            foreach (var (type, method) in row.Methods)
            {
                Assert.True(Regex.IsMatch(text, $@"\b{method}\b\s*(\(|<|=>|\{{|$)", RegexOptions.Multiline),
                    $"{type}.{method} is not declared in {string.Join(", ", row.Files)} ({row.Text})");
            }
        }
    }

    [Fact]
    public void ItsRows_AreInTheOrderOfTheKernelNamesWithoutTheirLeadingUnderscores()
    {
        var keys = Rows().Select(r => r.Functions[0]).ToList();
        var sorted = keys.OrderBy(k => k.TrimStart('_'), StringComparer.Ordinal).ThenBy(k => k, StringComparer.Ordinal).ToList();
        Assert.Equal(sorted, keys);
    }

    [Fact]
    public void EveryKernelFunctionADomainSummaryBeginsWith_HasARow()
    {
        var indexed = Rows().SelectMany(r => r.Functions).ToHashSet(StringComparer.Ordinal);
        var missing = new List<string>();
        foreach (var file in Directory.EnumerateFiles(Repository.File("src/Domain"), "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal)))
        {
            foreach (Match summary in Summary().Matches(File.ReadAllText(file)))
            {
                var text = CommentMarks().Replace(summary.Groups[1].Value, " ").Trim();
                if (LeadingFunctions().Match(text) is { Success: true } lead)
                {
                    missing.AddRange(KernelCall().Matches(lead.Value).Select(m => m.Groups[1].Value)
                        .Where(f => !indexed.Contains(f)).Select(f => $"{f}() ({Path.GetFileName(file)})"));
                }
            }
        }
        Assert.True(missing.Count == 0, "not in docs/kernel-index.md: " + string.Join(", ", missing.Distinct()));
    }

    [GeneratedRegex(@"`([A-Za-z_][A-Za-z0-9_]*)\(\)`")]
    private static partial Regex KernelFunction();

    [GeneratedRegex(@"`([A-Za-z]+)\.([A-Za-z0-9]+)`")]
    private static partial Regex MethodName();

    [GeneratedRegex(@"`([^`]+\.cs)`")]
    private static partial Regex SourceFile();

    [GeneratedRegex(@"<summary>(.*?)</summary>", RegexOptions.Singleline)]
    private static partial Regex Summary();

    [GeneratedRegex(@"\s*///\s*")]
    private static partial Regex CommentMarks();

    /// <summary>The kernel functions a summary opens with: "x(): ...", "x() + y() + z().", "x(), y() and z(): ...".</summary>
    [GeneratedRegex(@"^(?:[a-z_][a-z0-9_]*\(\)(?:\s*(?:\+|,|and|/)\s*)?)+")]
    private static partial Regex LeadingFunctions();

    [GeneratedRegex(@"([a-z_][a-z0-9_]*)\(\)")]
    private static partial Regex KernelCall();
}
