using System.Net;
using System.Reflection;
using System.Text;
using Microsoft.AspNetCore.Http.Metadata;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using PageAlloc.Api.Contracts;
using System.Text.Json.Nodes;
using PageAlloc.Api.Infrastructure;

namespace PageAlloc.Tests.Integration;

/// <summary>
/// A page call's body is parsed where Kestrel buffered it when it has all arrived, and by the
/// framework's reader otherwise (<see cref="JsonBody"/>). A client cannot tell which: the same body
/// gets the same answer whether it is sent in one write with its headers, in two writes with a
/// pause between, or chunked.
/// </summary>
public class JsonBodyTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public static TheoryData<string> Bodies() =>
    [
        """{"order":3}""",
        """{"order":3,"gfp":"GFP_KERNEL|__GFP_COMP","cpu":1}""",
        "{",
        """{"order":3} x""",
        """{"order":"3"}""",
        """{"order":3,"colour":"red"}""",
        """{"order":99}""",
        "{}",
        "null",
        "[1]",
    ];

    [Theory]
    [MemberData(nameof(Bodies))]
    public async Task Body_GetsTheSameAnswer_InOneWrite_InTwoWrites_OrChunked(string body)
    {
        await using var app = PageAllocApp.OnKestrel();
        using var client = new HttpClient { BaseAddress = app.Address };

        var whole = await Answer(client, new StringContent(body, Encoding.UTF8, "application/json"));
        var split = await Answer(client, new InTwoWrites(body, knownLength: true));
        var chunked = await Answer(client, new InTwoWrites(body, knownLength: false));

        Assert.Equal(whole, split);
        Assert.Equal(whole, chunked);
    }

    /// <summary>
    /// Every page call's JSON body goes through <see cref="JsonBody"/>: a request type that drops
    /// IJsonBody still works (the framework binds it), only slower, so nothing else would notice.
    /// </summary>
    [Fact]
    public async Task PageCallBodies_AreBoundByJsonBody()
    {
        await using var app = new PageAllocApp();
        var bodies = app.Services.GetRequiredService<EndpointDataSource>().Endpoints
            .Where(e => e.Metadata.GetMetadata<ITagsMetadata>()?.Tags.Contains("Pages") == true)
            .SelectMany(e => e.Metadata.GetMetadata<MethodInfo>()!.GetParameters())
            .Where(p => p.Name == "request" && !p.ParameterType.IsValueType && Nullable.GetUnderlyingType(p.ParameterType) is null)
            .Select(p => p.ParameterType)
            .Where(t => t != typeof(DrainPagesRequest)) // an optional body: the framework's binding says "no body" as null
            .Distinct()
            .ToArray();

        Assert.True(bodies.Length >= 7, $"only {bodies.Length} page-call bodies found");
        Assert.All(bodies, t => Assert.True(typeof(IJsonBody<>).MakeGenericType(t).IsAssignableFrom(t), $"{t.Name} is bound by the framework's reader"));
    }

    /// <summary>The status and what the answer says, without what differs call to call (the pfn, the trace id).</summary>
    private static async Task<string> Answer(HttpClient client, HttpContent content)
    {
        var response = await client.PostAsync("/zones/Normal/alloc_pages", content, Ct);
        var json = JsonNode.Parse(await response.Content.ReadAsStringAsync(Ct))!.AsObject();
        json.Remove("pfn");
        json.Remove("traceId");
        return $"{(int)response.StatusCode} {json.ToJsonString()}";
    }

    /// <summary>A JSON body sent as two writes 100 ms apart, with a Content-Length or chunked.</summary>
    private sealed class InTwoWrites : HttpContent
    {
        private readonly byte[] _bytes;
        private readonly bool _knownLength;

        public InTwoWrites(string json, bool knownLength)
        {
            _bytes = Encoding.UTF8.GetBytes(json);
            _knownLength = knownLength;
            Headers.ContentType = new("application/json");
        }

        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context)
        {
            var half = _bytes.Length / 2;
            await stream.WriteAsync(_bytes.AsMemory(0, half), Ct);
            await stream.FlushAsync(Ct);
            await Task.Delay(100, Ct);
            await stream.WriteAsync(_bytes.AsMemory(half), Ct);
        }

        protected override bool TryComputeLength(out long length)
        {
            length = _bytes.Length;
            return _knownLength;
        }
    }
}
