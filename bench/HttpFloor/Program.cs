using System.Text.Json;
using System.Text.Json.Serialization;
using PageAlloc.Bench.HttpFloor;

// The framework floor for bench/http/run.sh (issue 27): a bare minimal API with PageAlloc's two
// page-call routes and JSON shapes, and nothing else. No middleware, no logging, no validation
// beyond the framework's own binding. alloc_pages takes a pfn from a stack under a lock and answers
// 201 with a Location; free_pages gives it back and answers 200. What PageAlloc pays beyond this,
// for the same requests from the same wrk script, is its pipeline, its contract, and its allocator.
var builder = WebApplication.CreateSlimBuilder(args);
builder.Logging.ClearProviders();
builder.WebHost.ConfigureKestrel(k => k.AddServerHeader = false); // as PageAlloc: the same bytes on the wire
builder.Services.ConfigureHttpJsonOptions(o => o.SerializerOptions.TypeInfoResolverChain.Insert(0, FloorJson.Default));
var app = builder.Build();
var free = new FreePfns(firstPfn: 1 << 20, count: 1 << 20);

app.MapPost("/zones/{zone}/alloc_pages", IResult (string zone, AllocRequest request) =>
    free.TryTake(out var pfn)
        ? TypedResults.Created($"/zones/{zone}/pages/{pfn}", new AllocResponse(pfn, request.Order, zone, "movable", false, true, request.Gfp ?? "GFP_KERNEL"))
        : TypedResults.StatusCode(StatusCodes.Status507InsufficientStorage));
app.MapPost("/zones/{zone}/free_pages", (string zone, FreeRequest request) =>
{
    free.Give(request.Pfn);
    return TypedResults.Ok(new FreeResponse(request.Pfn, request.Order, true, 0));
});
app.MapGet("/healthz", () => "Healthy");
app.Run();

namespace PageAlloc.Bench.HttpFloor
{
    /// <summary>The free pfns: a stack under a lock, as an allocator's fast path would hold them.</summary>
    internal sealed class FreePfns
    {
        private readonly Lock _lock = new();
        private readonly Stack<long> _free;

        public FreePfns(long firstPfn, int count) => _free = new Stack<long>(Enumerable.Range(0, count).Select(i => firstPfn + count - 1 - i));

        public bool TryTake(out long pfn)
        {
            lock (_lock)
            {
                return _free.TryPop(out pfn);
            }
        }

        public void Give(long pfn)
        {
            lock (_lock)
            {
                _free.Push(pfn);
            }
        }
    }

    internal sealed record AllocRequest(int Order, string? Gfp, int? Cpu);

    internal sealed record FreeRequest(long Pfn, int Order, int? Cpu);

    internal sealed record AllocResponse(long Pfn, int Order, string Zone, string Migratetype, bool Compound, bool FromPcp, string Gfp);

    internal sealed record FreeResponse(long Pfn, int Order, bool Freed, int Refcount);

    [JsonSourceGenerationOptions(JsonSerializerDefaults.Web)]
    [JsonSerializable(typeof(AllocRequest))]
    [JsonSerializable(typeof(FreeRequest))]
    [JsonSerializable(typeof(AllocResponse))]
    [JsonSerializable(typeof(FreeResponse))]
    internal sealed partial class FloorJson : JsonSerializerContext;
}
