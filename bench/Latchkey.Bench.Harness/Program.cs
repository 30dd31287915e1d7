using Latchkey.Bench;

// The side-by-side benchmark (./bench/run.sh builds everything first; see docs/BENCHMARKS.md).
BenchOptions options;
try
{
    options = BenchOptions.Parse(args);
}
catch (HelpRequestedException)
{
    Console.WriteLine(BenchOptions.Usage);
    return 0;
}
catch (ArgumentException exception)
{
    Console.Error.WriteLine(exception.Message);
    Console.Error.WriteLine(BenchOptions.Usage);
    return 2;
}

await using var run = new BenchRun(options);
using var interrupt = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    // Ctrl+C: stop the servers the run started before leaving.
    e.Cancel = true;
    interrupt.Cancel();
};
var execution = run.ExecuteAsync();
var finished = await Task.WhenAny(execution, Task.Delay(Timeout.Infinite, interrupt.Token).ContinueWith(_ => 130, TaskScheduler.Default));
return await finished;
