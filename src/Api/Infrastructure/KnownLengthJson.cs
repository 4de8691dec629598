using System.Buffers;
using System.Reflection;
using System.Text.Json;
using Microsoft.AspNetCore.Http.Metadata;

namespace PageAlloc.Api.Infrastructure;

/// <summary>
/// JSON answers of the page calls, written with a Content-Length instead of chunked: the body is
/// serialised into an array first (a page call's answer is a few hundred bytes), which
/// spares the chunk framing and a second write on the hot path. They declare the same response
/// metadata as TypedResults.Ok / Created, so the OpenAPI document does not change.
/// </summary>
public static class KnownLengthJson
{
    public static OkJson<T> Ok<T>(T value) => new(value);

    public static CreatedJson<T> Created<T>(string location, T value) => new(location, value);

    internal static Task WriteAsync<T>(HttpContext context, int status, T value)
    {
        var typeInfo = HttpJson.TypeInfo<T>(context);
        // One array of exactly the body's size: the serializer writes through its own pooled buffer and writer.
        var body = JsonSerializer.SerializeToUtf8Bytes(value, typeInfo);
        var response = context.Response;
        response.StatusCode = status;
        response.ContentType = "application/json; charset=utf-8";
        response.ContentLength = body.Length;
        // Into the response pipe without a flush of its own: the server flushes headers and body
        // together when the request completes, as it would after this write's flush.
        response.BodyWriter.Write(body);
        return Task.CompletedTask;
    }

    internal static void Declare(EndpointBuilder builder, int status, Type type) =>
        builder.Metadata.Add(new ProducesResponseTypeMetadata(status, type, ["application/json"]));
}

/// <summary>200 with a JSON body of known length (see <see cref="KnownLengthJson"/>).</summary>
public sealed class OkJson<T>(T value) : IResult, IEndpointMetadataProvider, IStatusCodeHttpResult, IValueHttpResult, IValueHttpResult<T>
{
    public T Value { get; } = value;

    object? IValueHttpResult.Value => Value;

    public int StatusCode => StatusCodes.Status200OK;

    int? IStatusCodeHttpResult.StatusCode => StatusCode;

    public Task ExecuteAsync(HttpContext httpContext) => KnownLengthJson.WriteAsync(httpContext, StatusCode, Value);

    [System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1000", Justification = "IEndpointMetadataProvider's member is static.")]
    public static void PopulateMetadata(MethodInfo method, EndpointBuilder builder) =>
        KnownLengthJson.Declare(builder, StatusCodes.Status200OK, typeof(T));
}

/// <summary>201 with a Location and a JSON body of known length (see <see cref="KnownLengthJson"/>).</summary>
public sealed class CreatedJson<T>(string location, T value) : IResult, IEndpointMetadataProvider, IStatusCodeHttpResult, IValueHttpResult, IValueHttpResult<T>
{
    public string Location { get; } = location;

    public T Value { get; } = value;

    object? IValueHttpResult.Value => Value;

    public int StatusCode => StatusCodes.Status201Created;

    int? IStatusCodeHttpResult.StatusCode => StatusCode;

    public Task ExecuteAsync(HttpContext httpContext)
    {
        httpContext.Response.Headers.Location = Location;
        return KnownLengthJson.WriteAsync(httpContext, StatusCode, Value);
    }

    [System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1000", Justification = "IEndpointMetadataProvider's member is static.")]
    public static void PopulateMetadata(MethodInfo method, EndpointBuilder builder) =>
        KnownLengthJson.Declare(builder, StatusCodes.Status201Created, typeof(T));
}
