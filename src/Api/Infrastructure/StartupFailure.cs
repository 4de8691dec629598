using Microsoft.Extensions.Options;

namespace PageAlloc.Api.Infrastructure;

/// <summary>
/// Says why the host could not start when the reason is the configuration: the options binder's
/// conversion and unknown-key errors (buried under wrappers) and the validators' failures.
/// </summary>
public static class StartupFailure
{
    /// <summary>One line per bad value, or null when the exception is not about configuration.</summary>
    public static IReadOnlyList<string>? ConfigurationProblems(Exception exception)
    {
        for (var e = exception; e is not null; e = e.InnerException)
        {
            if (e is OptionsValidationException invalid)
            {
                return [.. invalid.Failures];
            }
        }
        var messages = new List<string>();
        for (var e = exception; e is not null; e = e.InnerException)
        {
            if (e is InvalidOperationException && (e.Message.StartsWith("Failed to convert configuration value", StringComparison.Ordinal)
                || e.Message.Contains("properties were not found", StringComparison.Ordinal)))
            {
                messages.Add(e.Message);
            }
        }
        return messages.Count == 0 ? null : messages;
    }

    /// <summary>The category of the host's own log, whose start failure is a stack trace.</summary>
    public const string HostLogCategory = "Microsoft.Extensions.Hosting.Internal.Host";

    /// <summary>
    /// One line for a start failure that is not about configuration: what failed, and for a port
    /// another process holds, how to pick another.
    /// </summary>
    public static string Describe(Exception exception)
    {
        for (var e = exception; e is not null; e = e.InnerException)
        {
            if (e is IOException && e.InnerException is Microsoft.AspNetCore.Connections.AddressInUseException)
            {
                return $"{e.Message} Another process is listening there: stop it, or pick another address with "
                    + "--urls http://localhost:PORT or ASPNETCORE_URLS.";
            }
        }
        var innermost = exception.GetBaseException();
        return innermost == exception ? $"{exception.GetType().Name}: {exception.Message}"
            : $"{exception.Message} ({innermost.GetType().Name}: {innermost.Message})";
    }
}
