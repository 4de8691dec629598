using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;
using PageAlloc.Api.Infrastructure;

namespace PageAlloc.Api.Security;

/// <summary>
/// Authenticates X-Api-Key against the configured keys (their SHA-256 digests compared in constant
/// time): the principal is named after the key, with the "admin" role for administrators. 401 and
/// 403 are problem responses like every other refusal.
/// </summary>
public sealed class ApiKeyAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options,
    ILoggerFactory logger,
    UrlEncoder encoder,
    IOptions<SecurityOptions> security)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "ApiKey";

    public const string AdminRole = "admin";

    protected override Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        if (!Request.Headers.TryGetValue(SecurityOptions.HeaderName, out var values) || values.Count != 1 || string.IsNullOrEmpty(values[0]))
        {
            return Task.FromResult(AuthenticateResult.NoResult());
        }
        var keys = security.Value;
        var presented = SHA256.HashData(Encoding.UTF8.GetBytes(values[0]!));
        ApiKeyOptions? match = null;
        for (var i = 0; i < keys.ApiKeys.Count; i++)
        {
            // Every key's digest is compared, in constant time, so the time taken says nothing about
            // which key matched or how long the presented one is.
            if (CryptographicOperations.FixedTimeEquals(presented, keys.KeyDigests[i]))
            {
                match = keys.ApiKeys[i];
            }
        }
        if (match is null)
        {
            return Task.FromResult(AuthenticateResult.Fail("The API key is not one of the configured keys."));
        }
        List<Claim> claims = [new(ClaimTypes.Name, match.Name)];
        if (match.Admin)
        {
            claims.Add(new Claim(ClaimTypes.Role, AdminRole));
        }
        var principal = new ClaimsPrincipal(new ClaimsIdentity(claims, SchemeName));
        return Task.FromResult(AuthenticateResult.Success(new AuthenticationTicket(principal, SchemeName)));
    }

    protected override Task HandleChallengeAsync(AuthenticationProperties properties) =>
        Refuse(ProblemCatalog.Unauthenticated, $"Send one of the configured API keys in the {SecurityOptions.HeaderName} header.");

    protected override Task HandleForbiddenAsync(AuthenticationProperties properties) =>
        Refuse(ProblemCatalog.Forbidden, "This call changes the whole machine or runs tests on it; it takes an administrator's API key.");

    private async Task Refuse(ProblemKind kind, string detail)
    {
        if (kind == ProblemCatalog.Unauthenticated)
        {
            Response.Headers.WWWAuthenticate = SchemeName;
        }
        UnreadBody.CloseConnection(Context); // refused before its body was read
        await Problems.WriteAsync(Context, kind, detail);
    }
}
