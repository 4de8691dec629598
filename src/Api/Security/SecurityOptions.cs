using System.ComponentModel.DataAnnotations;
using System.Security.Cryptography;
using System.Text;

namespace PageAlloc.Api.Security;

/// <summary>
/// The "Security" section. With no API keys (the default, for exploring on one's own machine)
/// every client is anonymous and may do anything. With keys, every request but health and the
/// OpenAPI document carries one in X-Api-Key; each key is a memory cgroup of the simulated machine.
/// </summary>
public sealed class SecurityOptions : IValidatableObject
{
    public const string Section = "Security";

    public const string HeaderName = "X-Api-Key";

    public List<ApiKeyOptions> ApiKeys { get; set; } = [];

    public bool Enabled => ApiKeys.Count > 0;

    private byte[][]? _keyDigests;

    /// <summary>
    /// SHA-256 of each key, in <see cref="ApiKeys"/> order, computed once. A presented key is hashed
    /// and compared with these, so the comparison takes the same time whatever the presented key's
    /// length (FixedTimeEquals on the keys themselves returns at once when the lengths differ).
    /// (Computed at most twice under a race, with the same result.)
    /// </summary>
    internal byte[][] KeyDigests => _keyDigests ??= [.. ApiKeys.Select(k => SHA256.HashData(Encoding.UTF8.GetBytes(k.Key)))];

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        var problems = new List<ValidationResult>();
        foreach (var key in ApiKeys)
        {
            var results = new List<ValidationResult>();
            if (!Validator.TryValidateObject(key, new ValidationContext(key), results, validateAllProperties: true))
            {
                problems.AddRange(results.Select(r => new ValidationResult($"Security:ApiKeys '{key.Name}': {r.ErrorMessage}")));
            }
        }
        if (ApiKeys.Select(k => k.Name).Distinct(StringComparer.Ordinal).Count() != ApiKeys.Count
            || ApiKeys.Select(k => k.Key).Distinct(StringComparer.Ordinal).Count() != ApiKeys.Count)
        {
            problems.Add(new ValidationResult("Security:ApiKeys: names and keys must be unique."));
        }
        return problems;
    }
}

/// <summary>One client: its key, whether it administers the service, its page and request budgets.</summary>
public sealed class ApiKeyOptions
{
    /// <summary>The client's name: its memory cgroup's name, and what logs and refusals call it.</summary>
    [Required, RegularExpression("^[A-Za-z0-9_.-]{1,64}$", ErrorMessage = "Name must be 1..64 letters, digits, '_', '.' or '-'.")]
    public string Name { get; set; } = "";

    /// <summary>The secret sent in X-Api-Key; at least 16 characters.</summary>
    [Required, MinLength(16, ErrorMessage = "Key must be at least 16 characters.")]
    public string Key { get; set; } = "";

    /// <summary>An administrator may reset the machine, run /tests and free any client's pages.</summary>
    public bool Admin { get; set; }

    /// <summary>
    /// memory.max of the client's memcg, in pages. Left out: an equal share of each machine's pages
    /// (its pages over the number of keys) for a key that is not an administrator's, none for an administrator's.
    /// </summary>
    [Range(0, long.MaxValue)]
    public long? MaxPages { get; set; }

    /// <summary>Requests per second the client may make (a token bucket, bursts up to one second's worth).</summary>
    [Range(1, 1_000_000)]
    public int RequestsPerSecond { get; set; } = 1000;
}
