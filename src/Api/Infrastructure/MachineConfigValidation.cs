using Microsoft.Extensions.Options;
using PageAlloc.Domain.Model;

namespace PageAlloc.Api.Infrastructure;

/// <summary>
/// Validates the "Machine" section when the host starts: the domain's own rules (zone names,
/// sizes, overlaps, min_free_kbytes), and that the machine fits in the memory this process may use,
/// twice over, since POST /reset boots a new machine while the old one still serves.
/// </summary>
public sealed class MachineConfigValidation : IValidateOptions<MachineConfig>
{
    public ValidateOptionsResult Validate(string? name, MachineConfig options)
    {
        var problems = options.Validate().Select(p => "Machine: " + p).ToList();
        var needed = 2 * options.StateBytes();
        var available = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        if (problems.Count == 0 && needed > available)
        {
            problems.Add($"Machine: the zones hold {options.Nodes.Sum(n => n.Zones.Sum(z => z.Pages))} pages, which take "
                + $"{needed >> 20} MiB of page state (about {MachineConfig.StateBytesPerPage} bytes a page, twice for a reset), "
                + $"more than the {available >> 20} MiB this process may use. Shrink the zones or give the process more memory.");
        }
        return problems.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(problems);
    }
}
