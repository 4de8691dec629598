using System.Globalization;
using PageAlloc.Domain.Model;

namespace PageAlloc.Bench;

/// <summary>Command-line options: seed|vmalloc [--iterations N] [--order K] [--pages N] [--strategy S|all] [--json].</summary>
internal sealed record Options(string Command, int Iterations, int Order, int Pages, FreeStrategy? Strategy, bool Json)
{
    public const string Usage =
        "usage: PageAlloc.Bench seed [--iterations N] [--order K] [--strategy per-page|chunked|upstream|all] [--json]\n" +
        "       PageAlloc.Bench vmalloc [--pages N] [--iterations N] [--strategy ...]\n" +
        "       PageAlloc.Bench zonesize [--iterations N]   (boots a 1 TiB zone: about 3 GB of memory)\n" +
        "       PageAlloc.Bench trace [--iterations N] [--strategy S]   (the seed loop with and without a listener on every tracepoint)\n" +
        "       PageAlloc.Bench micro [BenchmarkDotNet arguments, e.g. --filter *AllocFree*]";

    public static Options? Parse(string[] args, out string? error)
    {
        error = null;
        if (args.Length == 0)
        {
            error = Usage;
            return null;
        }
        int iterations = 100000, order = 9, pages = 4096;
        FreeStrategy? strategy = null;
        var json = false;
        for (var i = 1; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new FormatException($"{args[i]} needs a value");
            try
            {
                switch (args[i])
                {
                    case "--iterations": iterations = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                    case "--order": order = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                    case "--pages": pages = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                    case "--json": json = true; break;
                    case "--strategy":
                        var name = Next();
                        if (name == "all")
                        {
                            strategy = null;
                        }
                        else if (FreeStrategies.TryParse(name, out var s))
                        {
                            strategy = s;
                        }
                        else
                        {
                            throw new FormatException($"unknown strategy '{name}'");
                        }
                        break;
                    default: throw new FormatException($"unknown option '{args[i]}'");
                }
            }
            catch (FormatException e)
            {
                error = e.Message + "\n" + Usage;
                return null;
            }
        }
        if (iterations < 1 || order is < 1 or > PageAllocConstants.MaxPageOrder || pages < 1)
        {
            error = "--iterations and --pages must be positive and --order 1..10.\n" + Usage;
            return null;
        }
        return new Options(args[0], iterations, order, pages, strategy, json);
    }
}
