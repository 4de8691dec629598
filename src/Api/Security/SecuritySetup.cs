using System.Security.Claims;
using System.Threading.RateLimiting;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authorization;
using Microsoft.Extensions.Options;
using PageAlloc.Domain.Allocator;
using PageAlloc.Domain.Model;

namespace PageAlloc.Api.Security;

/// <summary>
/// Identity, ownership and quotas when API keys are configured: authentication by X-Api-Key,
/// every endpoint but health behind a key, /reset and /tests for administrators, a memory cgroup
/// per key (its memory.max the key's page limit), and a token bucket per key.
/// </summary>
public static class SecuritySetup
{
    /// <summary>The policy of calls that change the whole machine: administrators only (anyone when keys are off).</summary>
    public const string AdminOnly = "admin-only";

    public static IServiceCollection AddPageAllocSecurity(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<SecurityOptions>()
            .BindConfiguration(SecurityOptions.Section, o => o.ErrorOnUnknownConfiguration = true)
            .ValidateDataAnnotations()
            .ValidateOnStart();
        // Each key is a memcg of the machine, so its pages are charged to it and owned by it.
        services.AddOptions<MachineConfig>().PostConfigure<IOptions<SecurityOptions>>((machine, security) =>
        {
            if (security.Value.Enabled)
            {
                machine.Memcgs = MemcgsFor(security.Value, machine);
            }
        });

        // Which keys exist is known before the host is built. Without keys there is no
        // authentication at all, so anonymous exploration pays nothing for it per request.
        if (IsEnabled(configuration))
        {
            services.AddAuthentication(ApiKeyAuthenticationHandler.SchemeName)
                .AddScheme<AuthenticationSchemeOptions, ApiKeyAuthenticationHandler>(ApiKeyAuthenticationHandler.SchemeName, null);
            services.AddAuthorizationBuilder()
                .AddPolicy(AdminOnly, p => p.RequireRole(ApiKeyAuthenticationHandler.AdminRole))
                .SetFallbackPolicy(new AuthorizationPolicyBuilder().RequireAuthenticatedUser().Build());
        }
        return services;
    }

    /// <summary>
    /// The keys' memcgs on a machine of <paramref name="machine"/>'s shape. A key's memory.max is its
    /// MaxPages; left out, a key that is not an administrator's gets an equal share of the machine's
    /// pages (its pages over the number of keys), so that no key can take all of a shared machine
    /// and the others, administrators among them, keep some; an administrator has no limit.
    /// </summary>
    public static List<MemcgConfig> MemcgsFor(SecurityOptions security, MachineConfig machine)
    {
        var pages = machine.Nodes.SelectMany(n => n.Zones).Sum(z => Math.Max(0, z.Pages));
        var share = Math.Max(1, pages / Math.Max(1, security.ApiKeys.Count));
        return [.. security.ApiKeys.Select(k => new MemcgConfig { Name = k.Name, MaxPages = k.MaxPages ?? (k.Admin ? long.MaxValue : share) })];
    }

    public static bool IsEnabled(IConfiguration configuration) =>
        configuration.GetSection(SecurityOptions.Section).Get<SecurityOptions>()?.Enabled ?? false;

    /// <summary>Administrators only when keys are on (with keys off there are no identities, and anyone may).</summary>
    public static TBuilder RequireAdministrator<TBuilder>(this TBuilder builder)
        where TBuilder : IEndpointConventionBuilder
    {
        builder.Add(endpoint =>
        {
            if (IsEnabled(endpoint.ApplicationServices.GetRequiredService<IConfiguration>()))
            {
                endpoint.Metadata.Add(new AuthorizeAttribute(AdminOnly));
            }
        });
        return builder;
    }

    /// <summary>
    /// A token bucket per key (RequestsPerSecond tokens a second, bursts up to one second's worth);
    /// null when keys are off, so anonymous exploration pays nothing per request.
    /// </summary>
    public static PartitionedRateLimiter<HttpContext>? PerKeyLimiter(SecurityOptions security)
    {
        if (!security.Enabled)
        {
            return null;
        }
        var rates = security.ApiKeys.ToDictionary(k => k.Name, k => k.RequestsPerSecond, StringComparer.Ordinal);
        return PartitionedRateLimiter.Create<HttpContext, string>(context =>
            context.User.Identity?.Name is { } name && rates.TryGetValue(name, out var rate)
                ? RateLimitPartition.GetTokenBucketLimiter(name, _ => new TokenBucketRateLimiterOptions
                {
                    TokenLimit = rate,
                    TokensPerPeriod = rate,
                    ReplenishmentPeriod = TimeSpan.FromSeconds(1),
                    QueueLimit = 0,
                    AutoReplenishment = true,
                })
                : RateLimitPartition.GetNoLimiter("anonymous")); // refused later by authorization
    }
}

/// <summary>Who a page call acts for: the memcg its allocations are charged to, and the owner its frees must match.</summary>
public readonly record struct Caller(Memcg? Charge, Memcg? Owner)
{
    /// <summary>
    /// Anonymous (keys off): charged to none, may touch any page. A key: charged to its memcg, and
    /// limited to its own pages unless it is an administrator.
    /// </summary>
    public static Caller Of(HttpContext context, Machine machine)
    {
        // Without keys there is no memcg to charge, and context.User is not even asked for: the
        // framework would make an empty ClaimsPrincipal for every anonymous request.
        if (!machine.HasMemcgs)
        {
            return default;
        }
        var user = context.User;
        if (user.Identity is not { IsAuthenticated: true, Name: { } name } || machine.FindMemcg(name) is not { } memcg)
        {
            return default;
        }
        return new Caller(memcg, user.IsInRole(ApiKeyAuthenticationHandler.AdminRole) ? null : memcg);
    }
}
