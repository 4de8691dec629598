using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;

namespace PageAlloc.Tests.Integration;

/// <summary>
/// The curl flows the README, docs/http-api.md, docs/machines.md, docs/experiments.md and docs/reclaim.md show, run by bash against a real server as a
/// reader pastes them: each command's answer must be what the comment under it says ("..." stands
/// for anything), and the same on a second run after POST /reset, since a reader runs them again.
/// </summary>
public partial class DocFlowTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData("README.md", "## The seed's flow in three calls")]
    [InlineData("docs/http-api.md", "## The seed scenario with curl")]
    [InlineData("docs/machines.md", "## The resource")]
    [InlineData("docs/experiments.md", "## The seed's claim with curl")]
    [InlineData("docs/reclaim.md", "## Reclaim with curl")]
    public async Task TheDocumentsCurlFlow_AnswersWhatItsCommentsSay_OnEveryRun(string document, string section)
    {
        Assert.True(File.Exists("/usr/bin/curl") || string.IsNullOrEmpty(Environment.GetEnvironmentVariable("CI")), "curl is not installed");
        Assert.SkipUnless(File.Exists("/usr/bin/curl"), "curl is not installed");
        var steps = Steps(File.ReadAllText(Repository.File(document)), section);
        Assert.True(steps.Count(s => s.Expected.Count > 0) >= 3, $"{document}: no flow with expected answers under {section}");
        await using var app = PageAllocApp.OnKestrel();
        var address = app.Address.ToString().TrimEnd('/').Replace("http://", "", StringComparison.Ordinal);

        for (var run = 1; run <= 2; run++)
        {
            var outputs = await RunInBash(steps.Select(s => s.Command.Replace("localhost:8080", address, StringComparison.Ordinal)).ToList());
            foreach (var (step, output) in steps.Zip(outputs))
            {
                foreach (var expected in step.Expected)
                {
                    var pattern = new Regex("^" + string.Join(".*", expected.Split("...").Select(Regex.Escape)) + "$");
                    Assert.True(output.Split('\n').Any(line => pattern.IsMatch(line.TrimEnd())),
                        $"{document}, run {run}: `{step.Command}`\nanswered: {output}\nthe document says: {expected}");
                }
            }
            using var http = app.CreateClient();
            (await http.PostAsync("/reset", null, Ct)).EnsureSuccessStatusCode();
        }
    }

    /// <summary>A command of the flow (continuation lines joined) and the answers its comments give.</summary>
    private sealed record Step(string Command, List<string> Expected);

    /// <summary>The first indented block under <paramref name="section"/>: its commands and the comments after each.</summary>
    private static List<Step> Steps(string document, string section)
    {
        var lines = document[(document.IndexOf(section, StringComparison.Ordinal) + section.Length)..].Split('\n')
            .SkipWhile(l => !l.StartsWith("    ", StringComparison.Ordinal)).TakeWhile(l => l.StartsWith("    ", StringComparison.Ordinal) || l.Length == 0)
            .TakeWhile(l => l.Length > 0).Select(l => l[4..]).ToList();
        var steps = new List<Step>();
        var command = new StringBuilder();
        foreach (var line in lines)
        {
            if (line.StartsWith('#'))
            {
                steps[^1].Expected.Add(ExpectedAnswer().Replace(line, ""));
                continue;
            }
            command.Append(line.TrimEnd('\\').Trim()).Append(' ');
            if (!line.EndsWith('\\'))
            {
                steps.Add(new Step(command.ToString().Trim(), []));
                command.Clear();
            }
        }
        return steps;
    }

    /// <summary>"# " and a status the comment names before the body ("# 409 {...}"): curl -s prints only the body.</summary>
    [GeneratedRegex(@"^#\s*(\d{3} )?")]
    private static partial Regex ExpectedAnswer();

    /// <summary>Runs the commands in one bash, as a pasted block runs, and returns what each printed.</summary>
    private static async Task<List<string>> RunInBash(List<string> commands)
    {
        const string Marker = "--- next command ---";
        var script = string.Join($"\necho; echo '{Marker}'\n", commands) + "\necho\n";
        var start = new ProcessStartInfo("bash", ["-c", script]) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var bash = Process.Start(start)!;
        var output = bash.StandardOutput.ReadToEndAsync(Ct);
        var errors = bash.StandardError.ReadToEndAsync(Ct);
        await bash.WaitForExitAsync(Ct);
        var outputs = (await output).Split(Marker).Select(o => o.Trim('\n')).ToList();
        Assert.True(outputs.Count == commands.Count, $"bash printed {outputs.Count} parts for {commands.Count} commands: {await errors}");
        return outputs;
    }
}
