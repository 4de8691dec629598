using System.Text.Json;
using Microsoft.Extensions.Configuration;
using PageAlloc.Domain.Model;

namespace PageAlloc.Tests.Integration;

/// <summary>The service's default machine (appsettings.json) is the domain's (MachineConfig.Default()): one machine, written twice on purpose.</summary>
public class DefaultMachineTests
{
    [Fact]
    public void AppsettingsMachine_IsMachineConfigDefault()
    {
        var configuration = new ConfigurationBuilder().AddJsonFile(Repository.File("src/Api/appsettings.json")).Build();
        var configured = configuration.GetSection("Machine").Get<MachineConfig>(o => o.ErrorOnUnknownConfiguration = true)!;

        Assert.Equal(JsonSerializer.Serialize(MachineConfig.Default()), JsonSerializer.Serialize(configured));
    }
}
