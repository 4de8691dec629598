using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace PageAlloc.Tests.Integration;

/// <summary>
/// src/Api/PageAlloc.http run whole, as an editor's "send all" runs it: file variables, request
/// variables ({{name.response.body.$.member}}), every request in order. Each answers 2xx unless its
/// title names the status it shows; and the machine is left as it booted: nothing allocated, fault
/// injection off.
/// </summary>
public partial class HttpFileTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task PageAllocHttp_RunWhole_AnswersAsItsTitlesSay_AndLeavesTheMachineAsItBooted()
    {
        await using var app = new PageAllocApp();
        using var http = app.CreateClient();
        var booted = await http.GetStringAsync("/sys/kernel/debug/fail_page_alloc", Ct);
        var text = await File.ReadAllTextAsync(Repository.File("src/Api/PageAlloc.http"), Ct);
        var variables = FileVariable().Matches(text).ToDictionary(m => m.Groups["name"].Value, m => m.Groups["value"].Value.Trim());
        variables["PageAlloc"] = ""; // the test client's base address
        var answers = new Dictionary<string, JsonNode?>();

        var requests = text.Split("\n###").Skip(1).ToList();
        Assert.True(requests.Count >= 10, $"{requests.Count} requests");
        foreach (var request in requests)
        {
            var lines = request.Split('\n');
            var title = lines[0].Trim();
            var name = lines.Select(l => RequestName().Match(l)).FirstOrDefault(m => m.Success)?.Groups["name"].Value;
            var rest = lines.Skip(1).Where(l => !l.StartsWith('#')).ToList();
            var requestLine = Substitute(rest.First(l => l.Length > 0), variables, answers).Split(' ', 2);
            var headersEnd = rest.FindIndex(rest.IndexOf(rest.First(l => l.Length > 0)), l => l.Length == 0);
            var body = headersEnd < 0 ? "" : Substitute(string.Join('\n', rest.Skip(headersEnd + 1)).Trim(), variables, answers);

            using var message = new HttpRequestMessage(new HttpMethod(requestLine[0]), requestLine[1].Trim());
            if (body.Length > 0)
            {
                message.Content = new StringContent(body, Encoding.UTF8, "application/json");
            }
            using var response = await http.SendAsync(message, Ct);
            var answer = await response.Content.ReadAsStringAsync(Ct);
            var expected = StatusInTitle().Match(title) is { Success: true } status ? int.Parse(status.Value, System.Globalization.CultureInfo.InvariantCulture) : 0;
            Assert.True(expected == 0 ? response.IsSuccessStatusCode : (int)response.StatusCode == expected,
                $"### {title}\n{requestLine[0]} {requestLine[1]} {body}\nanswered {(int)response.StatusCode}: {answer}");
            if (name is not null)
            {
                answers[name] = JsonNode.Parse(answer);
            }
        }

        var stats = await http.GetJson("/stats");
        Assert.All(stats["zones"]!.AsArray(), zone => Assert.Equal(0, zone!["allocatedPages"]!.GetValue<long>()));
        Assert.Equal(Without("injected", booted), Without("injected", await http.GetStringAsync("/sys/kernel/debug/fail_page_alloc", Ct)));
    }

    private static string Without(string member, string json)
    {
        var node = JsonNode.Parse(json)!.AsObject();
        node.Remove(member);
        return node.ToJsonString();
    }

    private static string Substitute(string text, Dictionary<string, string> variables, Dictionary<string, JsonNode?> answers) =>
        Variable().Replace(text, m =>
        {
            var reference = m.Groups["ref"].Value;
            if (variables.TryGetValue(reference, out var value))
            {
                return value;
            }
            var parts = reference.Split('.'); // name.response.body.$.member
            Assert.True(parts.Length == 5 && parts[1] == "response" && parts[2] == "body" && parts[3] == "$", $"unknown variable {reference}");
            Assert.True(answers.TryGetValue(parts[0], out var answer), $"{{{{{reference}}}}} before request {parts[0]} ran");
            return answer![parts[4]]!.ToString();
        });

    [GeneratedRegex(@"^@(?<name>\w+)\s*=\s*(?<value>.*)$", RegexOptions.Multiline)]
    private static partial Regex FileVariable();

    [GeneratedRegex(@"^#\s*@name\s+(?<name>\w+)")]
    private static partial Regex RequestName();

    [GeneratedRegex(@"\{\{(?<ref>[^}]+)\}\}")]
    private static partial Regex Variable();

    /// <summary>A status the request's title says it answers ("Free it again: answers 409, kind page-free").</summary>
    [GeneratedRegex(@"(?<=answers )[45]\d\d\b")]
    private static partial Regex StatusInTitle();
}
