using System.Collections;
using static PageAlloc.Domain.Model.PageAllocConstants;

namespace PageAlloc.Domain.Model;

/// <summary>
/// What a range free handed to the allocator: the number of chunks of each order, and the chunks
/// themselves in the order they were freed, listed up to <see cref="ListLimit"/> (a per-page free
/// of a whole zone is a million chunks; the counts stay exact, the list stops growing).
/// </summary>
public sealed class ChunkTally(int listLimit = int.MaxValue) : IReadOnlyList<FreedChunk>
{
    private readonly List<FreedChunk> _listed = [];

    /// <summary>Chunks freed, by order 0..MAX_PAGE_ORDER.</summary>
    public long[] ByOrder { get; } = new long[NrPageOrders];

    public int ListLimit { get; } = listLimit;

    /// <summary>Chunks freed beyond <see cref="ListLimit"/>: counted in <see cref="ByOrder"/>, not listed.</summary>
    public long Unlisted { get; private set; }

    public int Count => _listed.Count;

    public FreedChunk this[int index] => _listed[index];

    public void Add(FreedChunk chunk)
    {
        ByOrder[chunk.Order]++;
        if (_listed.Count < ListLimit)
        {
            _listed.Add(chunk);
        }
        else
        {
            Unlisted++;
        }
    }

    public IEnumerator<FreedChunk> GetEnumerator() => _listed.GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}
