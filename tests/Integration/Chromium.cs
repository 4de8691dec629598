using Microsoft.Playwright;

namespace PageAlloc.Tests.Integration;

/// <summary>
/// Debian's chromium driven by Playwright (Playwright's own browser download cannot work on our
/// machines). .ci/run installs chromium, so CI always runs the browser tests; a `dotnet test` on a
/// machine without it skips them and says why (under CI they fail instead).
/// </summary>
internal static class Chromium
{
    public const string ExecutablePath = "/usr/bin/chromium";

    /// <summary>Skips the test without chromium, except under CI (.ci/run sets CI), where a browser test that cannot run fails.</summary>
    public static void SkipUnlessInstalled()
    {
        var missing = $"{ExecutablePath} is not installed (apt-get install chromium; .ci/run installs it)";
        Assert.True(File.Exists(ExecutablePath) || string.IsNullOrEmpty(Environment.GetEnvironmentVariable("CI")), missing);
        Assert.SkipUnless(File.Exists(ExecutablePath), missing);
    }

    public static async Task<IBrowser> Launch(IPlaywright playwright) =>
        await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = ExecutablePath,
            Headless = true,
            // No background connections: the machine's network is closed, and their refusals are noise.
            Args = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync"],
        });

    /// <summary>Collects the page's console errors and uncaught exceptions.</summary>
    public static List<string> Errors(IPage page)
    {
        var errors = new List<string>();
        page.Console += (_, message) =>
        {
            if (message.Type == "error")
            {
                errors.Add(message.Text);
            }
        };
        page.PageError += (_, error) => errors.Add(error);
        return errors;
    }
}
