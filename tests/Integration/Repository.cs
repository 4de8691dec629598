namespace PageAlloc.Tests.Integration;

/// <summary>Files of the repository the tests run from (a user's clone: the directory holding Service.sln).</summary>
internal static class Repository
{
    public static string Root { get; } = FindRoot();

    public static string File(string relative) => Path.Combine(Root, relative);

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (System.IO.File.Exists(Path.Combine(dir.FullName, "Service.sln")))
            {
                return dir.FullName;
            }
        }
        throw new FileNotFoundException("Service.sln not found above " + AppContext.BaseDirectory);
    }
}
