using System.ComponentModel.DataAnnotations;
using System.Reflection;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Http.Metadata;
using Microsoft.Extensions.Options;

namespace PageAlloc.Api.Infrastructure;

/// <summary>
/// A validation problem in the request's own terms. Microsoft.Extensions.Validation (.NET 10) keys
/// its errors by the C# member path (Order, Items[3].NrPages) and names the C# member in its messages
/// ("The field Order must be ..."), and has nothing that takes the serializer's naming: neither
/// ValidateContext nor ValidationOptions has a JsonSerializerOptions or naming-policy member
/// (dotnet/aspnetcore#61764 and #63290 are open; #62341, which added one, was closed unmerged), and
/// its member infos' names are what it reads the values by. JsonSerializerOptions.DictionaryKeyPolicy
/// would rename the keys as they are written, but of every dictionary the API writes (pagetypeinfo's
/// Unmovable and Movable among them). So each validation problem, from the page calls'
/// <see cref="FastValidation"/> or the framework's validation filter, is put into JSON terms on its way
/// out (<see cref="ProblemCatalog.Complete"/>, so only refusals pay): each key becomes the path of the
/// member as the serializer's contract for the body spells it (its naming policy, [JsonPropertyName]),
/// and each message names that member the same way. <see cref="ProblemCatalog.Complete"/> then gives
/// the problem the domain's kind when every member that failed has one (<see cref="ProblemCatalog.OutOfRange"/>).
/// </summary>
public static class ValidationProblems
{
    /// <summary>
    /// One member that failed: its path as the client spelt it, its messages, the member and its JSON
    /// name (null for a key that names none), and whether it was left out (its [Required] failed) rather than out of range.
    /// </summary>
    public sealed record Failure(string Path, string[] Messages, PropertyInfo? Member, string? JsonName, bool Missing);

    /// <summary>The errors of a problem on <paramref name="http"/>'s endpoint, in the JSON spelling of its body (the endpoint's accepted request type).</summary>
    public static IReadOnlyList<Failure> InJsonTerms(IDictionary<string, string[]> errors, HttpContext http)
    {
        var body = http.GetEndpoint()?.Metadata.GetMetadata<IAcceptsMetadata>()?.RequestType;
        var json = http.RequestServices.GetService<IOptions<Microsoft.AspNetCore.Http.Json.JsonOptions>>()?.Value.SerializerOptions;
        return InJsonTerms(errors, body, json ?? JsonSerializerOptions.Web);
    }

    /// <summary>
    /// Each error's key as the JSON path of its member in <paramref name="body"/> (pfns[3], items[2].nrPages),
    /// and its messages naming the member so. A key that names no member of the body (a query parameter) is kept.
    /// </summary>
    public static IReadOnlyList<Failure> InJsonTerms(IDictionary<string, string[]> errors, Type? body, JsonSerializerOptions options)
    {
        var failures = new List<Failure>(errors.Count);
        foreach (var (key, messages) in errors)
        {
            var (path, member, jsonName) = JsonPath(key, body, options);
            var shown = member is null || jsonName is null || member.GetCustomAttribute<DisplayAttribute>()?.GetName() is not null
                ? messages // no member to rename, or [Display] chose the name its messages use
                : [.. messages.Select(m => Regex.Replace(m, $@"\b{Regex.Escape(member.Name)}\b", jsonName.Replace("$", "$$", StringComparison.Ordinal), RegexOptions.CultureInvariant))];
            failures.Add(new Failure(path, shown, member, jsonName, member is not null && IsRequiredFailure(member, messages)));
        }
        return failures;
    }

    /// <summary>Replaces <paramref name="problem"/>'s errors with <paramref name="failures"/>' (in their order).</summary>
    public static void Rewrite(HttpValidationProblemDetails problem, IReadOnlyList<Failure> failures)
    {
        problem.Errors = failures.ToDictionary(f => f.Path, f => f.Messages, StringComparer.Ordinal);
    }

    /// <summary>The JSON name of <paramref name="property"/> of <paramref name="type"/>: the serializer's contract, else its attribute or naming policy.</summary>
    public static string JsonName(Type type, PropertyInfo property, JsonSerializerOptions options)
    {
        if (options.TryGetTypeInfo(type, out var info))
        {
            foreach (var candidate in info.Properties)
            {
                if (candidate.AttributeProvider is PropertyInfo p && p.Name == property.Name)
                {
                    return candidate.Name;
                }
            }
        }
        return property.GetCustomAttribute<JsonPropertyNameAttribute>()?.Name
            ?? options.PropertyNamingPolicy?.ConvertName(property.Name)
            ?? property.Name;
    }

    /// <summary>A key's path (Items[3].NrPages) with each member's JSON name, the last member, and its JSON name.</summary>
    private static (string Path, PropertyInfo? Member, string? JsonName) JsonPath(string key, Type? type, JsonSerializerOptions options)
    {
        var segments = key.Split('.');
        PropertyInfo? member = null;
        string? jsonName = null;
        for (var i = 0; i < segments.Length; i++)
        {
            var segment = segments[i];
            var bracket = segment.IndexOf('[', StringComparison.Ordinal);
            var name = bracket < 0 ? segment : segment[..bracket];
            var property = type?.GetProperty(name, BindingFlags.Public | BindingFlags.Instance);
            if (type is null || property is null)
            {
                return (key, null, null); // not a member of the body (a query or route parameter): left as it is
            }
            jsonName = JsonName(type, property, options);
            segments[i] = bracket < 0 ? jsonName : jsonName + segment[bracket..];
            member = property;
            type = property.PropertyType;
            for (var b = bracket; b >= 0 && type is not null; b = segment.IndexOf('[', b + 1))
            {
                type = ElementType(type);
            }
        }
        return (string.Join('.', segments), member, jsonName);
    }

    private static Type? ElementType(Type type) =>
        type.IsArray ? type.GetElementType()
        : type.GetInterfaces().Append(type)
            .FirstOrDefault(i => i.IsGenericType && i.GetGenericTypeDefinition() == typeof(IEnumerable<>))?.GetGenericArguments()[0];

    /// <summary>Whether the member's messages are its [Required] attribute's: it was left out, not out of range.</summary>
    private static bool IsRequiredFailure(PropertyInfo member, string[] messages)
    {
        if (member.GetCustomAttribute<RequiredAttribute>() is not { } required)
        {
            return false;
        }
        var said = required.FormatErrorMessage(member.GetCustomAttribute<DisplayAttribute>()?.GetName() ?? member.Name);
        return messages.Contains(said, StringComparer.Ordinal);
    }
}
