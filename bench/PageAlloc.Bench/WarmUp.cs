using System.Diagnostics;

namespace PageAlloc.Bench;

/// <summary>
/// Runs a piece of work for at least a second (and three times) before it is timed. Tiered JIT
/// promotes hot methods to optimised code only after call counting and a background compile; a
/// run timed before that measures tier-0 code (seen here: the chunked seed loop at 950 ns per
/// iteration instead of 180, and the floor at 200 ns instead of 70).
/// </summary>
internal static class WarmUp
{
    public static void Run(Action work)
    {
        var watch = Stopwatch.StartNew();
        for (var i = 0; i < 3 || watch.ElapsedMilliseconds < 1000; i++)
        {
            work();
        }
    }
}
