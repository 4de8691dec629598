using System.Net.Http.Json;
using System.Globalization;
using Microsoft.Playwright;
using PageAlloc.Client;

namespace PageAlloc.Tests.Integration;

/// <summary>The page at / in a real browser (<see cref="Chromium"/>), against a test host.</summary>
public class PageTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>/proc/buddyinfo as zone → free blocks per order.</summary>
    private static async Task<Dictionary<string, string>> BuddyInfo(HttpClient http)
    {
        var text = await http.GetStringAsync("/proc/buddyinfo", Ct);
        return text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(line => line.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .ToDictionary(parts => parts[3], parts => string.Join(" ", parts[4..]));
    }

    [Fact]
    public async Task ThePage_ShowsEveryZone_AndItsBuddyinfoFollowsTheAllocator_WithoutConsoleErrors()
    {
        Chromium.SkipUnlessInstalled();
        await using var app = PageAllocApp.OnKestrel();
        using var http = new HttpClient { BaseAddress = app.Address };
        var api = new PageAllocClient(http);
        using var playwright = await Playwright.CreateAsync();
        await using var browser = await Chromium.Launch(playwright);
        var page = await browser.NewPageAsync(new BrowserNewPageOptions { ViewportSize = new ViewportSize { Width = 1100, Height = 1400 } });
        var errors = Chromium.Errors(page);

        await page.GotoAsync(app.Address.ToString());
        var zones = (await api.ListZonesAsync("default", Ct)).Select(z => z.Name).ToList();
        await Assertions.Expect(page.Locator("article.zone")).ToHaveCountAsync(zones.Count);
        for (var i = 0; i < 6; i++)
        {
            await api.AllocPagesAsync("default", "Normal", new AllocPagesRequest { Order = 9 }, Ct);
        }
        await api.AllocPagesAsync("default", "DMA32", new AllocPagesRequest { Order = 9, Gfp = "GFP_DMA32" }, Ct);

        // The page refreshes every second: wait until its tables show what /proc/buddyinfo says.
        var expected = await BuddyInfo(http);
        foreach (var zone in zones)
        {
            var cells = page.Locator($"article.zone[data-zone='{zone}'] table.buddyinfo tbody td");
            await Assertions.Expect(cells).ToHaveTextAsync(expected[zone].Split(' '), new() { Timeout = 10_000 });
            await Assertions.Expect(page.Locator($"article.zone[data-zone='{zone}'] canvas.pageblocks"))
                .ToHaveAttributeAsync("aria-label", new System.Text.RegularExpressions.Regex("^Pageblock map: \\d+ pageblocks"));
        }
        if (Environment.GetEnvironmentVariable("PAGEALLOC_SCREENSHOT") is { Length: > 0 } screenshot)
        {
            // For the README's picture: a few seconds of mixed traffic, so the timeline and the map have something to show.
            var random = new Random(1);
            for (var second = 0; second < 6; second++)
            {
                for (var i = 0; i < 40; i++)
                {
                    var gfp = random.Next(3) == 0 ? "GFP_KERNEL" : "GFP_HIGHUSER_MOVABLE";
                    await api.AllocPagesAsync("default", "Normal", new AllocPagesRequest { Order = random.Next(11), Gfp = gfp, Cpu = random.Next(4) }, Ct);
                }
                await Task.Delay(1000, Ct);
            }
            await page.Locator("header").ScreenshotAsync(new LocatorScreenshotOptions { Path = screenshot.Replace(".png", "-header.png", StringComparison.Ordinal) });
            await page.Locator("article.zone[data-zone='Normal']").ScreenshotAsync(new LocatorScreenshotOptions { Path = screenshot });
        }
        Assert.True(errors.Count == 0, string.Join("\n", errors));
    }

    [Fact]
    public async Task ChoosingAMachine_ShowsItsZones_AndTheAddressNamesIt()
    {
        Chromium.SkipUnlessInstalled();
        await using var app = PageAllocApp.OnKestrel();
        using var http = new HttpClient { BaseAddress = app.Address };
        var created = await http.PostAsJsonAsync("/machines", new
        {
            name = "lab-2",
            config = new { cpus = 2, nodes = new[] { new { id = 0, zones = new[] { new { name = "Normal", startPfn = 0x100000, pages = 8192 } } } } },
        }, Ct);
        Assert.Equal(System.Net.HttpStatusCode.Created, created.StatusCode);
        using var playwright = await Playwright.CreateAsync();
        await using var browser = await Chromium.Launch(playwright);
        var page = await browser.NewPageAsync();
        var errors = Chromium.Errors(page);

        await page.GotoAsync(app.Address.ToString());
        await Assertions.Expect(page.Locator("article.zone")).ToHaveCountAsync(3);
        await Assertions.Expect(page.Locator("#machine option")).ToHaveCountAsync(2, new() { Timeout = 10_000 });
        await page.Locator("#machine").SelectOptionAsync("lab-2");

        await Assertions.Expect(page.Locator("article.zone")).ToHaveCountAsync(1);
        await Assertions.Expect(page.Locator("article.zone .zone-summary")).ToContainTextAsync("8192 pages");
        Assert.EndsWith("/?machine=lab-2", page.Url, StringComparison.Ordinal);
        Assert.EndsWith("/machines/lab-2/proc/buddyinfo", await page.Locator("a[data-machine-path='/proc/buddyinfo']").GetAttributeAsync("href"), StringComparison.Ordinal);
        await page.GotoAsync(page.Url); // the address alone brings the same machine back
        await Assertions.Expect(page.Locator("article.zone .zone-summary")).ToContainTextAsync("8192 pages");
        Assert.True(errors.Count == 0, string.Join("\n", errors));
    }

    [Fact]
    public async Task TheSeedTestButton_ChartsEachStrategysTime()
    {
        Chromium.SkipUnlessInstalled();
        await using var app = PageAllocApp.OnKestrel(("Limits:TestTimeoutSeconds", "240")) /* the seed test on a loaded CI machine */;
        using var playwright = await Playwright.CreateAsync();
        await using var browser = await Chromium.Launch(playwright);
        var page = await browser.NewPageAsync();
        await page.GotoAsync(app.Address.ToString());

        await page.GetByRole(AriaRole.Button, new() { Name = "Run 10000 iterations" }).ClickAsync();

        var rows = page.Locator("table.seed-times tbody tr");
        // Three strategies of 10,000 iterations each on a fresh machine: seconds alone, far longer
        // beside the rest of the suite on two cores; the point here is the chart, not the time.
        await Assertions.Expect(rows).ToHaveCountAsync(3, new() { Timeout = 200_000 });
        await Assertions.Expect(rows.Locator("th")).ToHaveTextAsync(["per-page", "chunked", "upstream"]);
        var times = await rows.Locator("td.median").AllTextContentsAsync();
        Assert.All(times, t => Assert.True(double.Parse(t, CultureInfo.InvariantCulture) > 0));
        Assert.True(double.Parse(times[0], CultureInfo.InvariantCulture) > double.Parse(times[1], CultureInfo.InvariantCulture)); // the seed's point
    }

    [Fact]
    public async Task TheExperimentView_RunsTheSeedClaim_AndDrawsEveryVariantInEveryChart_WithoutConsoleErrors()
    {
        Chromium.SkipUnlessInstalled();
        await using var app = PageAllocApp.OnKestrel();
        using var http = new HttpClient { BaseAddress = app.Address };
        var before = await http.StatsWithoutLocks();
        using var playwright = await Playwright.CreateAsync();
        await using var browser = await Chromium.Launch(playwright);
        var page = await browser.NewPageAsync(new BrowserNewPageOptions { ViewportSize = new ViewportSize { Width = 1100, Height = 1400 } });
        var errors = Chromium.Errors(page);
        await page.GotoAsync(app.Address.ToString());

        await page.GetByRole(AriaRole.Button, new() { Name = "Run experiment" }).ClickAsync();

        var charts = page.Locator("#experiment-charts figure.experiment-chart");
        await Assertions.Expect(charts).ToHaveCountAsync(10, new() { Timeout = 120_000 });
        foreach (var chart in await charts.AllAsync())
        {
            await Assertions.Expect(chart.Locator("polyline")).ToHaveCountAsync(3);
        }
        await Assertions.Expect(page.Locator("#experiment-charts polyline[data-variant='chunked']").First).ToBeVisibleAsync();
        var blocks = page.Locator("table.experiment-summary tr", new() { HasText = "free_blocks_order9_final" }).Locator("td");
        var perPage = double.Parse((await blocks.Nth(0).TextContentAsync())!.Split(' ')[0], CultureInfo.InvariantCulture);
        var chunked = double.Parse((await blocks.Nth(1).TextContentAsync())!.Split(' ')[0], CultureInfo.InvariantCulture);
        Assert.True(chunked > perPage, $"chunked ends with {chunked} order-9 blocks, per-page with {perPage}");
        await Assertions.Expect(page.Locator("#experiment-links a", new() { HasText = "CSV" })).ToHaveAttributeAsync("href", new System.Text.RegularExpressions.Regex("/timeline\\.csv$"));

        if (Environment.GetEnvironmentVariable("PAGEALLOC_SCREENSHOT") is { Length: > 0 } screenshot)
        {
            // For the README's picture of the seed's claim.
            await page.Locator("#experiments").ScreenshotAsync(new LocatorScreenshotOptions { Path = screenshot.Replace(".png", "-experiment.png", StringComparison.Ordinal) });
        }

        // A reload shows the newest experiment again; the ready-made fragmented start left the machine as it was.
        await page.ReloadAsync();
        await Assertions.Expect(charts).ToHaveCountAsync(10, new() { Timeout = 20_000 });
        await Assertions.Expect(page.Locator("#experiment-state")).ToContainTextAsync("Normal fragmented");
        Assert.Equal(before, await http.StatsWithoutLocks());
        Assert.True(errors.Count == 0, string.Join("\n", errors));
    }

    [Fact]
    public async Task OnAPhone_ThePageDoesNotScrollSideways()
    {
        Chromium.SkipUnlessInstalled();
        await using var app = PageAllocApp.OnKestrel(("Limits:TestTimeoutSeconds", "240")) /* the seed test on a loaded CI machine */;
        using var playwright = await Playwright.CreateAsync();
        await using var browser = await Chromium.Launch(playwright);
        var page = await browser.NewPageAsync(new BrowserNewPageOptions { ViewportSize = new ViewportSize { Width = 390, Height = 844 } });
        await page.GotoAsync(app.Address.ToString());
        await Assertions.Expect(page.Locator("article.zone")).ToHaveCountAsync(3);
        await page.GetByRole(AriaRole.Button, new() { Name = "Run 10000 iterations" }).ClickAsync();
        await Assertions.Expect(page.Locator("table.seed-times tbody tr")).ToHaveCountAsync(3, new() { Timeout = 200_000 });

        var widths = await page.EvaluateAsync<int[]>("() => [document.documentElement.scrollWidth, window.innerWidth]");
        var (scrollWidth, viewport) = (widths[0], widths[1]);
        Assert.True(scrollWidth <= viewport, $"the page is {scrollWidth} px wide in a {viewport} px viewport");
    }

    [Fact]
    public async Task WithAKeyEntered_TheKeyedLinksShowTheirText_InsteadOfA401()
    {
        Chromium.SkipUnlessInstalled();
        const string Key = "page-test-admin-key-0123456789";
        await using var app = PageAllocApp.OnKestrel(("Security:ApiKeys:0:Name", "root"), ("Security:ApiKeys:0:Key", Key), ("Security:ApiKeys:0:Admin", "true"));
        using var http = new HttpClient { BaseAddress = app.Address };
        http.DefaultRequestHeaders.Add("X-Api-Key", Key);
        using var playwright = await Playwright.CreateAsync();
        await using var browser = await Chromium.Launch(playwright);
        var page = await browser.NewPageAsync();
        await page.GotoAsync(app.Address.ToString());
        await page.Locator("#api-key").FillAsync(Key);
        await page.Locator("#api-key").DispatchEventAsync("change");

        await page.GetByRole(AriaRole.Link, new() { Name = "/proc/buddyinfo" }).ClickAsync();
        await Assertions.Expect(page.Locator("#viewer-text")).ToContainTextAsync("Node 0, zone   Normal");
        await page.GetByRole(AriaRole.Button, new() { Name = "Close" }).ClickAsync();

        await page.GetByRole(AriaRole.Link, new() { Name = "/events" }).ClickAsync();
        await Assertions.Expect(page.Locator("#viewer")).ToBeVisibleAsync();
        // The stream is open once the viewer shows; each allocation is an event in it.
        for (var i = 0; i < 20 && !(await page.Locator("#viewer-text").TextContentAsync() ?? "").Contains("mm_page_alloc", StringComparison.Ordinal); i++)
        {
            (await http.PostAsync("/zones/Normal/alloc_pages", new StringContent("""{"order":0}""", System.Text.Encoding.UTF8, "application/json"), Ct)).EnsureSuccessStatusCode();
            await Task.Delay(250, Ct);
        }
        await Assertions.Expect(page.Locator("#viewer-text")).ToContainTextAsync("kmem:mm_page_alloc");
        await page.GetByRole(AriaRole.Button, new() { Name = "Close" }).ClickAsync();
        await Assertions.Expect(page.Locator("#viewer")).ToBeHiddenAsync();
    }

    [Fact]
    public async Task SwaggerUi_TryItOutOnEvents_ShowsAnAnswer_WithTheFormatsInAList()
    {
        Chromium.SkipUnlessInstalled();
        await using var app = PageAllocApp.OnKestrel();
        using var playwright = await Playwright.CreateAsync();
        await using var browser = await Chromium.Launch(playwright);
        var page = await browser.NewPageAsync();
        await page.GotoAsync(new Uri(app.Address, "/swagger/index.html#/Events/StreamEvents").ToString());
        var operation = page.Locator("#operations-Events-StreamEvents");
        await Assertions.Expect(operation).ToBeVisibleAsync(new() { Timeout = 15_000 });
        if (!await operation.Locator(".try-out__btn").IsVisibleAsync())
        {
            await operation.Locator(".opblock-summary").ClickAsync();
        }

        await operation.Locator(".try-out__btn").ClickAsync();
        await Assertions.Expect(operation.Locator("tr[data-param-name='format'] select option")).ToHaveTextAsync(["--", "text", "json", "perf-script"]);
        await operation.Locator("button.execute").ClickAsync();

        // The example fills in seconds=5: the stream ends, and Swagger UI shows its status.
        await Assertions.Expect(operation.Locator(".live-responses-table tr.response .response-col_status")).ToHaveTextAsync("200", new() { Timeout = 20_000 });
    }
}
