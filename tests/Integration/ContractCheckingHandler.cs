using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace PageAlloc.Tests.Integration;

/// <summary>
/// Holds every answer the integration suite receives to the committed OpenAPI document: a success's
/// JSON has every required member and no member the schema lacks, and a problem's status and kind
/// are among those its operation documents. So the document is checked against what the service
/// really does, by every test, not by a separate list that could drift from both.
/// </summary>
internal sealed class ContractCheckingHandler : DelegatingHandler
{
    private static readonly Lazy<JsonNode> Document = new(() => JsonNode.Parse(File.ReadAllText(CommittedOpenApi.Path()))!);

    // Most literal segments first, as routing prefers a literal to a parameter (/experiments/traces
    // is not /experiments/{id}).
    private static readonly Lazy<(Regex Path, string Template)[]> Routes = new(() =>
        [.. Document.Value["paths"]!.AsObject()
            .OrderByDescending(p => p.Key.Split('/').Count(segment => segment.Length > 0 && !segment.StartsWith('{')))
            .Select(p => (new Regex("^" + Regex.Replace(p.Key, @"\{[^/]+\}", "[^/]+") + "/?$"), p.Key))]);

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var response = await base.SendAsync(request, cancellationToken);
        var path = request.RequestUri!.AbsolutePath;
        // Today's routes are the default machine's aliases: the document describes them once, under /machines/{machine}.
        var documentedPath = path.StartsWith("/machines", StringComparison.Ordinal) ? path : "/machines/default" + path;
        var template = Routes.Value.FirstOrDefault(r => r.Path.IsMatch(documentedPath)).Template;
        var operation = template is null ? null : Document.Value["paths"]![template]![request.Method.Method.ToLowerInvariant()];
        var mediaType = response.Content.Headers.ContentType?.MediaType;
        if (operation is null || mediaType is not ("application/json" or "application/problem+json"))
        {
            return response; // not a documented operation (unknown routes, health), or not JSON (the /proc text files)
        }
        await response.Content.LoadIntoBufferAsync(cancellationToken);
        var body = JsonNode.Parse(await response.Content.ReadAsStringAsync(cancellationToken));
        var status = ((int)response.StatusCode).ToString(System.Globalization.CultureInfo.InvariantCulture);
        var documented = operation["responses"]?[status]
            ?? throw new ContractViolation($"{request.Method} {template} answered {status}, which the document does not list.");
        var content = documented["content"]?[mediaType]
            ?? throw new ContractViolation($"{request.Method} {template} answered {status} as {mediaType}, which the document does not list.");
        var errors = new List<string>();
        Check(body, content["schema"]!, "$", errors);
        if (mediaType == "application/problem+json")
        {
            var kind = body?["kind"]?.GetValue<string>();
            if (content["examples"]?[kind ?? ""] is null)
            {
                errors.Add($"kind '{kind}' is not among the kinds documented for {status}");
            }
            if (body?["type"]?.GetValue<string>() != "urn:pagealloc:problem:" + kind)
            {
                errors.Add($"type '{body?["type"]}' does not name kind '{kind}'");
            }
        }
        if (errors.Count > 0)
        {
            throw new ContractViolation($"{request.Method} {path} → {status}: {string.Join("; ", errors)}. Body: {body?.ToJsonString()}");
        }
        return response;
    }

    /// <summary>The subset of JSON Schema the document uses: $ref, required, additionalProperties false, items, enum, nullable.</summary>
    private static void Check(JsonNode? value, JsonNode schema, string at, List<string> errors)
    {
        if (schema["$ref"]?.GetValue<string>() is { } reference)
        {
            schema = Document.Value["components"]!["schemas"]![reference.Split('/')[^1]]!;
        }
        if (value is null)
        {
            if (schema["nullable"]?.GetValue<bool>() != true)
            {
                errors.Add($"{at} is null");
            }
            return;
        }
        if (schema["enum"] is JsonArray values && !values.Any(v => JsonNode.DeepEquals(v, value)))
        {
            errors.Add($"{at} = {value.ToJsonString()} is not one of the documented values");
        }
        if (value is JsonObject obj)
        {
            foreach (var required in schema["required"]?.AsArray() ?? [])
            {
                if (!obj.ContainsKey(required!.GetValue<string>()))
                {
                    errors.Add($"{at}.{required} is required but missing");
                }
            }
            var properties = schema["properties"]?.AsObject();
            foreach (var (name, member) in obj)
            {
                if (properties?[name] is { } memberSchema)
                {
                    Check(member, memberSchema, $"{at}.{name}", errors);
                }
                else if (schema["additionalProperties"] is JsonValue allowed && !allowed.GetValue<bool>())
                {
                    errors.Add($"{at}.{name} is not in the schema");
                }
                else if (schema["additionalProperties"] is JsonObject extra)
                {
                    Check(member, extra, $"{at}.{name}", errors);
                }
            }
        }
        else if (value is JsonArray array && schema["items"] is { } items)
        {
            for (var i = 0; i < array.Count; i++)
            {
                Check(array[i], items, $"{at}[{i}]", errors);
            }
        }
    }
}

/// <summary>An answer the committed OpenAPI document does not describe.</summary>
internal sealed class ContractViolation(string message) : Exception(message);

/// <summary>src/Api/openapi/openapi.json, the committed document, found by walking up from the test's output folder.</summary>
internal static class CommittedOpenApi
{
    public static string Path()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = System.IO.Path.Combine(dir.FullName, "src", "Api", "openapi", "openapi.json");
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }
        throw new FileNotFoundException("src/Api/openapi/openapi.json not found above " + AppContext.BaseDirectory);
    }
}
