namespace PageAlloc.Api.Infrastructure;

/// <summary>
/// Where the process finds its files and which address it listens on when nobody said, so that it
/// serves the same whatever directory it is started from and however it is started (dotnet run,
/// the published build, the container).
/// </summary>
public static class ServiceHostDefaults
{
    /// <summary>The address when no urls, http_ports, https_ports or Kestrel endpoint is configured.</summary>
    public const string Url = "http://localhost:8080";

    /// <summary>
    /// The content root: the one given (--contentRoot, ASPNETCORE_CONTENTROOT, DOTNET_CONTENTROOT;
    /// WebApplicationFactory gives one too), else the directory of the application's own files. The
    /// framework's default is the working directory, so a published build started from elsewhere
    /// read no appsettings.json and served its page empty.
    /// </summary>
    public static string? ContentRoot(string[] args)
    {
        var given = new ConfigurationBuilder()
            .AddEnvironmentVariables("DOTNET_")
            .AddEnvironmentVariables("ASPNETCORE_")
            .AddCommandLine(args)
            .Build()[WebHostDefaults.ContentRootKey];
        return string.IsNullOrEmpty(given) ? AppContext.BaseDirectory : null; // null: the builder reads the given one
    }

    /// <summary>
    /// Listens on <see cref="Url"/> unless an address is configured. The default lives here rather
    /// than in a launch profile, whose applicationUrl overrode ASPNETCORE_URLS under dotnet run.
    /// </summary>
    public static void ListenOnDefaultUrlUnlessConfigured(this WebApplicationBuilder builder)
    {
        var configuration = builder.Configuration;
        string[] addressKeys = [WebHostDefaults.ServerUrlsKey, WebHostDefaults.HttpPortsKey, WebHostDefaults.HttpsPortsKey];
        if (addressKeys.All(key => string.IsNullOrEmpty(configuration[key])) && !configuration.GetSection("Kestrel:Endpoints").Exists())
        {
            builder.WebHost.UseUrls(Url);
        }
    }
}
