using System.Net;
using System.Net.Http.Json;
using System.Text.RegularExpressions;
using Microsoft.Playwright;

namespace PageAlloc.Tests.Integration.AsUsers;

/// <summary>
/// The service started as its users start it, as real processes: the README's own run command, and
/// the published build started from another directory. A test host runs in Development with the
/// test's content root, and served the page while every browser got it empty; these do not.
/// Alone: each builds or publishes the service and starts a process, and the machine has two cores.
/// </summary>
[Collection(nameof(AsUsersRunItTests))]
[CollectionDefinition(nameof(AsUsersRunItTests), DisableParallelization = true)]
public partial class AsUsersRunItTests
{
    private static readonly TimeSpan StartWithin = TimeSpan.FromMinutes(3); // dotnet run builds first

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>README.md's command that runs the service, taken from its "Run and test" block.</summary>
    private static string ReadmeRunCommand()
    {
        var readme = File.ReadAllText(Repository.File("README.md"));
        var command = ReadmeRun().Match(readme);
        Assert.True(command.Success, "README.md has no `dotnet run --project src/Api` line");
        return command.Groups["command"].Value.Trim();
    }

    [GeneratedRegex(@"^\s+(?<command>dotnet run --project src/Api[^#\n]*)#", RegexOptions.Multiline)]
    private static partial Regex ReadmeRun();

    [Fact]
    public async Task TheReadmesRunCommand_ServesThePageAndEveryAssetItLoads_AndChromiumDrawsEveryZone()
    {
        await using var service = ServiceProcess.Start(ReadmeRunCommand(), Repository.Root);
        var address = await service.Listening(StartWithin);

        await EveryAssetOfThePage_IsTheFileInWwwroot(address, service);
        await ChromiumDrawsEveryZone(address);
    }

    [Fact]
    public async Task ThePublishedBuild_StartedFromAnotherDirectory_ServesThePage_AndReadsItsOwnSettings()
    {
        var scratch = Directory.CreateTempSubdirectory("pagealloc-published-");
        try
        {
            var publish = Path.Combine(scratch.FullName, "publish");
            await using (var build = ServiceProcess.Start($"dotnet publish src/Api -c Release -o {publish}", Repository.Root))
            {
                Assert.True(await build.Exited(StartWithin) == 0, build.Output);
            }
            var elsewhere = Directory.CreateDirectory(Path.Combine(scratch.FullName, "elsewhere")).FullName;
            await using var service = ServiceProcess.Start($"dotnet {Path.Combine(publish, "PageAlloc.Api.dll")}", elsewhere);
            var address = await service.Listening(StartWithin);

            await EveryAssetOfThePage_IsTheFileInWwwroot(address, service);
            await ChromiumDrawsEveryZone(address);
            // appsettings.json was read: it keeps Microsoft.AspNetCore at Warning, the framework's
            // default would log every request at Information.
            Assert.DoesNotContain("Request starting", service.Output, StringComparison.Ordinal);
        }
        finally
        {
            scratch.Delete(recursive: true);
        }
    }

    /// <summary>
    /// "/" and every stylesheet and script it loads, asked for as a browser asks (gzip, br) and as
    /// curl does (no encoding): each answer, decoded, is the file in src/Api/wwwroot.
    /// </summary>
    private static async Task EveryAssetOfThePage_IsTheFileInWwwroot(Uri address, ServiceProcess service)
    {
        var wwwroot = Repository.File("src/Api/wwwroot");
        var index = await File.ReadAllTextAsync(Path.Combine(wwwroot, "index.html"), Ct);
        var assets = PageAsset().Matches(index).Select(m => m.Groups["path"].Value).ToList();
        Assert.NotEmpty(assets);
        foreach (var (path, file) in assets.Select(a => ("/" + a, a)).Prepend(("/", "index.html")))
        {
            var expected = await File.ReadAllBytesAsync(Path.Combine(wwwroot, file), Ct);
            foreach (var encoding in new[] { "gzip, br", "gzip", "br", "identity" })
            {
                using var handler = new HttpClientHandler { AutomaticDecompression = DecompressionMethods.None };
                using var http = new HttpClient(handler) { BaseAddress = address };
                using var request = new HttpRequestMessage(HttpMethod.Get, path);
                request.Headers.TryAddWithoutValidation("Accept-Encoding", encoding);
                using var response = await http.SendAsync(request, Ct);
                var body = await Decode(response);
                Assert.True(response.StatusCode == HttpStatusCode.OK && body.AsSpan().SequenceEqual(expected),
                    $"GET {path} with Accept-Encoding: {encoding} answered {(int)response.StatusCode} "
                    + $"{response.Content.Headers.ContentEncoding.FirstOrDefault() ?? "identity"}, {body.Length} bytes decoded, "
                    + $"where wwwroot/{file} has {expected.Length}.\n{service.Output}");
            }
        }
    }

    /// <summary>The stylesheets and scripts index.html loads (its links to routes are not assets).</summary>
    [GeneratedRegex(@"<(?:link rel=""stylesheet"" href|script[^>]* src)=""(?<path>[^""/:][^""]*)""")]
    private static partial Regex PageAsset();

    private static async Task<byte[]> Decode(HttpResponseMessage response)
    {
        var raw = await response.Content.ReadAsStreamAsync(Ct);
        Stream decoded = response.Content.Headers.ContentEncoding.FirstOrDefault() switch
        {
            "gzip" => new System.IO.Compression.GZipStream(raw, System.IO.Compression.CompressionMode.Decompress),
            "br" => new System.IO.Compression.BrotliStream(raw, System.IO.Compression.CompressionMode.Decompress),
            null => raw,
            var other => throw new InvalidDataException($"unexpected Content-Encoding {other}"),
        };
        using var bytes = new MemoryStream();
        await decoded.CopyToAsync(bytes, Ct);
        return bytes.ToArray();
    }

    /// <summary>The page in Chromium, as a person opens it: one drawn pageblock map per zone, no console error.</summary>
    private static async Task ChromiumDrawsEveryZone(Uri address)
    {
        Chromium.SkipUnlessInstalled();
        using var http = new HttpClient { BaseAddress = address };
        var zones = await http.GetFromJsonAsync<List<ZoneName>>("/zones", Ct);
        Assert.NotNull(zones);
        using var playwright = await Playwright.CreateAsync();
        await using var browser = await Chromium.Launch(playwright);
        var page = await browser.NewPageAsync();
        var errors = Chromium.Errors(page);

        await page.GotoAsync(address.ToString());

        await Assertions.Expect(page.Locator("article.zone")).ToHaveCountAsync(zones.Count, new() { Timeout = 10_000 });
        foreach (var zone in zones)
        {
            await Assertions.Expect(page.Locator($"article.zone[data-zone='{zone.Name}'] canvas.pageblocks"))
                .ToHaveAttributeAsync("aria-label", new Regex(@"^Pageblock map: \d+ pageblocks"));
            await Assertions.Expect(page.Locator($"article.zone[data-zone='{zone.Name}'] table.buddyinfo tbody td")).ToHaveCountAsync(11);
        }
        Assert.True(errors.Count == 0, string.Join("\n", errors));
    }

    private sealed record ZoneName(string Name);
}
