using PageAlloc.Bench;

return BenchCommand.Create().Parse(args).Invoke();
