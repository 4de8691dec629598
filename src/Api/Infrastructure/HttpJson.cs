using System.Text.Json.Serialization.Metadata;
using Microsoft.AspNetCore.Http.Json;
using Microsoft.Extensions.Options;

namespace PageAlloc.Api.Infrastructure;

/// <summary>
/// The service's JSON settings (ConfigureHttpJsonOptions in Program.cs: strict numbers, strict
/// enums, no unknown members) as one type's metadata, for the page calls' own body reading
/// (<see cref="JsonBody"/>) and answer writing (<see cref="KnownLengthJson"/>), so both read and
/// write exactly as the framework would.
/// </summary>
internal static class HttpJson
{
    public static JsonTypeInfo<T> TypeInfo<T>(HttpContext context) =>
        (JsonTypeInfo<T>)context.RequestServices.GetRequiredService<IOptions<JsonOptions>>().Value.SerializerOptions.GetTypeInfo(typeof(T));
}
