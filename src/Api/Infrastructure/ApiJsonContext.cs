using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Mvc;
using PageAlloc.Api.Contracts;
using PageAlloc.Domain.Allocator;

namespace PageAlloc.Api.Infrastructure;

/// <summary>
/// Source-generated JSON for the hot request and response types: no reflection on the alloc/free
/// path. Types not listed here fall back to the reflection-based resolver.
/// </summary>
[JsonSourceGenerationOptions(JsonSerializerDefaults.Web)]
[JsonSerializable(typeof(AllocPagesRequest))]
[JsonSerializable(typeof(AllocPagesResponse))]
[JsonSerializable(typeof(BlockRequest))]
[JsonSerializable(typeof(FreePagesResponse))]
[JsonSerializable(typeof(PageRequest))]
[JsonSerializable(typeof(RefcountResponse))]
[JsonSerializable(typeof(SplitPageResponse))]
[JsonSerializable(typeof(FreeContigRangeRequest))]
[JsonSerializable(typeof(FreePagesBulkRequest))]
[JsonSerializable(typeof(RangeFreeResponse))]
[JsonSerializable(typeof(PageState))]
[JsonSerializable(typeof(ProblemDetails))]
internal sealed partial class ApiJsonContext : JsonSerializerContext;
