using Microsoft.Extensions.Options;
using PageAlloc.Domain.Model;

namespace PageAlloc.Api.Infrastructure;

/// <summary>
/// The service's configuration sections as validated options: "Machine" (the simulated machine)
/// and "Limits" (what one client may cost). Unknown keys and values that do not convert are
/// errors; every value is validated when the host starts (ValidateOnStart).
/// </summary>
public static class ConfigurationSetup
{
    public static IServiceCollection AddPageAllocConfiguration(this IServiceCollection services)
    {
        services.AddOptions<MachineConfig>()
            .BindConfiguration("Machine", o => o.ErrorOnUnknownConfiguration = true)
            .PostConfigure(c =>
            {
                if (c.Nodes.Count == 0)
                {
                    c.Nodes = MachineConfig.Default().Nodes;
                }
            })
            .ValidateOnStart();
        services.AddSingleton<IValidateOptions<MachineConfig>, MachineConfigValidation>();

        services.AddOptions<LimitsOptions>()
            .BindConfiguration(LimitsOptions.Section, o => o.ErrorOnUnknownConfiguration = true)
            .ValidateDataAnnotations()
            .ValidateOnStart();
        return services;
    }
}
