using PageAlloc.Domain.Allocator;
using PageAlloc.Domain.Model;

namespace PageAlloc.Api.Infrastructure;

/// <summary>
/// Holds the served machine. POST /reset swaps in a freshly booted one built from the same
/// configuration; requests already running finish on the machine they started with.
/// </summary>
public sealed class MachineHost
{
    private Machine _machine;

    public MachineHost(MachineConfig config)
    {
        Config = config;
        _machine = new Machine(config);
    }

    public MachineConfig Config { get; }

    public Machine Machine => Volatile.Read(ref _machine);

    public void Reset() => Volatile.Write(ref _machine, new Machine(Config));
}
