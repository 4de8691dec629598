using PageAlloc.TraceReplay;

return await ReplayCommand.Create().Parse(args).InvokeAsync();
