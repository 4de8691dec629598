using PageAlloc.Experiment;

return await ExperimentCommand.Create().Parse(args).InvokeAsync();
