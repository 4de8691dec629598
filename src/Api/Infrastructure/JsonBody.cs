using System.Reflection;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Http.Metadata;

namespace PageAlloc.Api.Infrastructure;

/// <summary>
/// A page call's JSON body, bound as the framework binds it, without its asynchronous machinery
/// when the body has already arrived. A page call's body is a few dozen bytes and comes in the same
/// packet as its headers; the framework still reads it through the serializer's asynchronous
/// pipe reader (its state machines, buffer state and continuations cost more than the parse
/// itself, measured with perf under wrk). When the whole body is in Kestrel's buffer, it is parsed
/// there in one synchronous call; otherwise (a body still arriving, chunked, or split across
/// buffers) the framework's own ReadFromJsonAsync reads it.
///
/// A request type opts in by declaring <see cref="IJsonBody{TSelf}"/>. What a client sees does
/// not change: the same failures (BadHttpRequestException around the JsonException, Kestrel's own
/// for a body too large or too slow, or "no body"),
/// which <see cref="ProblemExceptionHandler"/> words; the same accepted media type
/// (<see cref="Declare{T}"/> declares what the framework declares for a JSON body), so routing's
/// 415 and the OpenAPI document are unchanged.
/// </summary>
public static class JsonBody
{
    /// <summary>Reads the body as <typeparamref name="T"/>; null when there is no body (the framework then refuses a required one).</summary>
    public static ValueTask<T?> ReadAsync<T>(HttpContext context, ParameterInfo parameter)
        where T : class
    {
        if (context.Features.Get<IHttpRequestBodyDetectionFeature>() is { CanHaveBody: false })
        {
            return ValueTask.FromResult<T?>(null); // as the framework: no body at all is "not provided", not bad JSON
        }
        var request = context.Request;
        var typeInfo = HttpJson.TypeInfo<T>(context);
        if (request.ContentLength is not > 0)
        {
            return SlowAsync(context, parameter, typeInfo); // chunked
        }
        var body = request.BodyReader;
        if (!body.TryRead(out var read))
        {
            return SlowAsync(context, parameter, typeInfo);
        }
        var buffer = read.Buffer;
        if (buffer.Length != request.ContentLength || !buffer.IsSingleSegment)
        {
            body.AdvanceTo(buffer.Start); // nothing consumed: the framework's reader starts from the same place
            return SlowAsync(context, parameter, typeInfo);
        }
        try
        {
            return ValueTask.FromResult(JsonSerializer.Deserialize(buffer.FirstSpan, typeInfo));
        }
        catch (JsonException failure)
        {
            throw Unreadable(parameter, failure);
        }
        finally
        {
            body.AdvanceTo(buffer.End);
        }
    }

    /// <summary>The framework's metadata for a required JSON body of type <typeparamref name="T"/>.</summary>
    public static void Declare<T>(EndpointBuilder builder) =>
        builder.Metadata.Add(new AcceptsMetadata(["application/json"], typeof(T), isOptional: false));

    private static async ValueTask<T?> SlowAsync<T>(HttpContext context, ParameterInfo parameter, JsonTypeInfo<T> typeInfo)
        where T : class
    {
        try
        {
            return await context.Request.ReadFromJsonAsync(typeInfo, context.RequestAborted);
        }
        catch (JsonException failure)
        {
            throw Unreadable(parameter, failure);
        }
        catch (IOException gone) when (gone is not BadHttpRequestException)
        {
            return null; // the client went away mid-body, as the framework treats it: the handler does not run
        }
        // A BadHttpRequestException (an IOException too) is Kestrel's refusal of the body: too large
        // (413, a chunked body past the limit) or too slow (408). It goes to ProblemExceptionHandler
        // as it is; taken for a client gone, it became 400 "A JSON request body is required."
    }

    /// <summary>As RequestDelegateFactory reports a body that is not JSON of the type (ThrowOnBadRequest): 400 with the JsonException inside.</summary>
    private static BadHttpRequestException Unreadable(ParameterInfo parameter, JsonException failure) =>
        new($"Failed to read parameter \"{parameter.ParameterType.Name} {parameter.Name}\" from the request body as JSON.", failure);
}

/// <summary>
/// A request record bound by <see cref="JsonBody"/>: the framework finds BindAsync and the body's
/// metadata through these two interfaces, implemented once here for every request type.
/// </summary>
public interface IJsonBody<TSelf> : IBindableFromHttpContext<TSelf>, IEndpointParameterMetadataProvider
    where TSelf : class, IJsonBody<TSelf>
{
    static ValueTask<TSelf?> IBindableFromHttpContext<TSelf>.BindAsync(HttpContext context, ParameterInfo parameter) =>
        JsonBody.ReadAsync<TSelf>(context, parameter);

    static void IEndpointParameterMetadataProvider.PopulateMetadata(ParameterInfo parameter, EndpointBuilder builder) =>
        JsonBody.Declare<TSelf>(builder);
}
