using System.Diagnostics.CodeAnalysis;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace PageAlloc.Api.Infrastructure;

/// <summary>
/// Enums as their documented kebab-case names only ("per-page", "movable"). The framework's
/// JsonStringEnumConverter also reads "PerPage", "perpage" and integers, none of which the OpenAPI
/// document lists; a client that sent them would be served but could not read the answer.
/// </summary>
public sealed class StrictEnumConverterFactory : JsonConverterFactory
{
    public override bool CanConvert(Type typeToConvert) => typeToConvert.IsEnum;

    [UnconditionalSuppressMessage("AOT", "IL3050", Justification = "Enum converters for the API's own enums.")]
    public override JsonConverter CreateConverter(Type typeToConvert, JsonSerializerOptions options) =>
        (JsonConverter)Activator.CreateInstance(typeof(StrictEnumConverter<>).MakeGenericType(typeToConvert))!;
}

/// <summary>One enum's names, each the member's name in kebab case.</summary>
public sealed class StrictEnumConverter<TEnum> : JsonConverter<TEnum>
    where TEnum : struct, Enum
{
    private static readonly Dictionary<string, TEnum> ByName =
        Enum.GetValues<TEnum>().ToDictionary(v => NameOf(v), v => v, StringComparer.Ordinal);

    private static readonly Dictionary<TEnum, JsonEncodedText> ToName =
        Enum.GetValues<TEnum>().ToDictionary(v => v, v => JsonEncodedText.Encode(NameOf(v)));

    private static string NameOf(TEnum value) => JsonNamingPolicy.KebabCaseLower.ConvertName(value.ToString());

    public override TEnum Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (reader.TokenType == JsonTokenType.String && reader.GetString() is { } name && ByName.TryGetValue(name, out var value))
        {
            return value;
        }
        throw new JsonException($"must be one of {string.Join(", ", ByName.Keys)}.");
    }

    public override void Write(Utf8JsonWriter writer, TEnum value, JsonSerializerOptions options) =>
        writer.WriteStringValue(ToName[value]);
}
