using BenchmarkDotNet.Running;
using PageAlloc.Bench;

if (args.Length > 0 && args[0] == "micro")
{
    BenchmarkSwitcher.FromAssembly(typeof(AllocFreeBenchmarks).Assembly).Run(args[1..]);
    return 0;
}
var options = Options.Parse(args, out var error);
if (options is null)
{
    Console.Error.WriteLine(error);
    return 2;
}
return options.Command switch
{
    "seed" => SeedCommand.Run(options),
    "vmalloc" => VmallocCommand.Run(options),
    "zonesize" => ZoneSizeCommand.Run(options),
    "trace" => TraceCostCommand.Run(options),
    _ => Fail($"unknown command '{options.Command}'\n{Options.Usage}"),
};

static int Fail(string message)
{
    Console.Error.WriteLine(message);
    return 2;
}
