using System.ComponentModel.DataAnnotations;
using System.Reflection;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Metadata;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using PageAlloc.Api.Contracts;
using PageAlloc.Api.Infrastructure;
using PageAlloc.Domain.Model;

namespace PageAlloc.Tests.Integration;

/// <summary>
/// The page calls' quick validation (<see cref="QuickCheck"/>) against the DataAnnotations it
/// stands in for: over random requests heavy in edge values, it vouches for a request exactly when
/// the attributes pass. Never for an invalid one (the framework's 400 would be skipped), and for
/// every valid one (or the hot path would pay the framework's validation after all).
/// </summary>
public class QuickCheckTests
{
    public static TheoryData<Type> PageCallRequests() =>
        [typeof(AllocPagesRequest), typeof(BlockRequest), typeof(FreeContigRangeRequest), typeof(FreePagesBulkRequest),
         typeof(PageRequest), typeof(DrainPagesRequest), typeof(AllocContigRangeRequest), typeof(AllocContigPagesRequest)];

    [Theory]
    [MemberData(nameof(PageCallRequests))]
    public void QuickCheck_VouchesForARequest_ExactlyWhenItsAttributesPass(Type type)
    {
        var quick = QuickCheck.For(type);
        Assert.NotNull(quick);
        var random = new Random(20261126);
        var constructor = type.GetConstructors().Single();
        int valid = 0, invalid = 0;
        for (var i = 0; i < 20_000; i++)
        {
            var request = constructor.Invoke([.. constructor.GetParameters().Select(p => AnyValue(p.ParameterType, random))]);

            var attributesPass = AttributesPass(request);

            Assert.True(attributesPass == quick(request), $"{request}: attributes {(attributesPass ? "pass" : "fail")}, quick check disagrees");
            _ = attributesPass ? valid++ : invalid++;
        }
        Assert.True(valid > 1000 && invalid > 1000, $"{valid} valid and {invalid} invalid requests: the generator misses one side");
    }

    [Fact]
    public void QuickCheck_LeavesAnAttributeItDoesNotKnow_ToTheFramework()
    {
        Assert.Null(QuickCheck.For(typeof(WithAnEmailAddress)));
        Assert.Null(QuickCheck.For(typeof(WithExclusiveRange)));
        Assert.Null(QuickCheck.For(typeof(WithANestedRequest)));
        Assert.False(QuickCheck.For(typeof(PageRequest))!(null));
    }

    [Fact]
    public void QuickCheck_LeavesATypeLevelAttribute_ToTheFramework()
    {
        Assert.Null(QuickCheck.For(typeof(WithATypeLevelRule)));
    }

    [Fact]
    public void QuickCheck_VouchesForAPfnFromTheRoute_AndNotForAnotherType()
    {
        var quick = QuickCheck.For(typeof(Pfn));

        Assert.NotNull(quick);
        Assert.True(quick(new Pfn(0x100000)));
        Assert.False(quick(0x100000L));
        Assert.False(quick(null));
    }

    /// <summary>
    /// Every parameter a page call validates has a predicate: a parameter without one sends every
    /// request through the framework's validator. (An HttpContext parameter once did: the runtime
    /// resolver calls it validatable, and each page call paid the whole validator walking it.)
    /// </summary>
    [Fact]
    public async Task FastValidation_HasAPredicate_ForEveryParameterAPageCallValidates()
    {
        await using var app = new PageAllocApp();
        var endpoints = app.Services.GetRequiredService<EndpointDataSource>().Endpoints
            .Where(e => e.Metadata.GetMetadata<ITagsMetadata>()?.Tags.Contains("Pages") == true)
            .ToArray();
        Assert.NotEmpty(endpoints);

        foreach (var endpoint in endpoints)
        {
            var handler = endpoint.Metadata.GetMetadata<MethodInfo>()!;
            var plan = FastValidation.Plan(app.Services, handler);

            Assert.All(plan, p => Assert.True(p.Quick is not null, $"{handler.Name}({p.Type.Name} {p.Name}) has no predicate"));
            if (handler.GetParameters().Any(p => p.Name == "request"))
            {
                Assert.Contains(plan, p => p.Name == "request"); // however the body is bound, it is validated
            }
            Assert.DoesNotContain(plan, p => p.Type == typeof(HttpContext));
        }
    }

    [CustomValidation(typeof(WithATypeLevelRule), nameof(Never))]
    private sealed record WithATypeLevelRule(int? Value)
    {
        public static ValidationResult Never(object value) => new("never valid");
    }

    private sealed record WithAnEmailAddress([property: EmailAddress] string? Address);

    private sealed record WithExclusiveRange([property: Range(0, 10, MinimumIsExclusive = true)] int? Value);

    private sealed record WithANestedRequest([property: Required] PageRequest? Page);

    private static bool AttributesPass(object request)
    {
        try
        {
            return Validator.TryValidateObject(request, new ValidationContext(request), [], validateAllProperties: true);
        }
        catch (OverflowException)
        {
            return false; // [Range(1, int.MaxValue)] on a long beyond int: the framework reports the exception's message
        }
    }

    private static object? AnyValue(Type type, Random random)
    {
        if (random.Next(6) == 0 && (!type.IsValueType || Nullable.GetUnderlyingType(type) is not null))
        {
            return null;
        }
        var t = Nullable.GetUnderlyingType(type) ?? type;
        if (t == typeof(int))
        {
            return Pick(random, [int.MinValue, -1, 0, 1, 2, 3, 9, 10, 11, MachineConfig.MaxCpus - 1, MachineConfig.MaxCpus, int.MaxValue], random.Next(-20, 300));
        }
        if (t == typeof(long))
        {
            return Pick(random, [long.MinValue, -1L, 0L, 1L, 512L, int.MaxValue, int.MaxValue + 1L, 1L << 53, (1L << 53) + 1, long.MaxValue], random.NextInt64(-5, 1L << 40));
        }
        if (t == typeof(string))
        {
            return Pick(random, ["", " ", "GFP_KERNEL", "GFP_ATOMIC|__GFP_COMP", "banana"], "x");
        }
        if (t == typeof(long[]))
        {
            var length = Pick(random, [0, 1, 2, 1 << 20, (1 << 20) + 1], random.Next(0, 64));
            return new long[length];
        }
        if (t.IsEnum)
        {
            var values = Enum.GetValues(t);
            return values.GetValue(random.Next(values.Length));
        }
        throw new InvalidOperationException($"No generator for {type}; add one so the request type stays covered.");
    }

    private static T Pick<T>(Random random, T[] edges, T any) => random.Next(3) == 0 ? any : edges[random.Next(edges.Length)];
}
