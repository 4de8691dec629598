using System.Diagnostics;

namespace PageAlloc.Bench;

/// <summary>
/// The floor of the seed loop (design.md section 4): its irreducible memory work in its fastest
/// form. Per iteration: set 2^order refcounts to 1 (split_page), then drop and check them and the
/// flags (the free checks), as vectorised span operations. No allocator, no lists, no locks.
/// </summary>
internal static class Floor
{
    public static double NsPerIteration(int iterations, int order)
    {
        var pages = 1 << order;
        var refcounts = new int[pages];
        var flags = new byte[pages];
        long bad = 0;
        var watch = Stopwatch.StartNew();
        for (var i = 0; i < iterations; i++)
        {
            var rc = refcounts.AsSpan();
            rc.Fill(1);                                   // split_page: every page referenced once
            if (rc.IndexOfAnyExcept(1) >= 0 || flags.AsSpan().IndexOfAnyExcept((byte)0) >= 0)
            {
                bad++;                                    // put_page_testzero + free checks
            }
            rc.Clear();                                   // every reference dropped
        }
        watch.Stop();
        GC.KeepAlive(bad);
        return watch.Elapsed.TotalNanoseconds / iterations;
    }
}
