using System.Diagnostics;
using System.Net;
using System.Text.Json;
using Latchkey.Tests.Infrastructure;

namespace Latchkey.Tests.Operations;

/// <summary>
/// <c>Logging:Format=json</c> as an operator runs it: the built server in its own process, its
/// console read line by line. Each line is one JSON object, and what a request logs carries the
/// request's trace id (the id its traces have, docs/operations.md). The banner stays plain text.
/// </summary>
public sealed class LogFormatTests
{
    [Fact]
    public async Task Json_logs_are_one_object_a_line_with_the_requests_trace_id()
    {
        var folder = Directory.CreateTempSubdirectory("latchkey-jsonlogs-");
        var port = FreePorts.Next();
        var start = new ProcessStartInfo(Path.Combine(AppContext.BaseDirectory, "latchkey"), ["serve", "--urls", $"http://127.0.0.1:{port}"])
        {
            WorkingDirectory = folder.FullName,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.Environment["DOTNET_ENVIRONMENT"] = "Development";
        start.Environment["LATCHKEY_Logging__Format"] = "json";
        start.Environment["LATCHKEY_Logging__LogLevel__Latchkey"] = "Information";
        start.Environment["LATCHKEY_Vault__KeyFile"] = Path.Combine(folder.FullName, "keys.json");
        var lines = new List<string>();
        using var process = Process.Start(start)!;
        process.OutputDataReceived += (_, line) => { if (line.Data is not null) { lock (lines) { lines.Add(line.Data); } } };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            using var client = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false }) { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
            await Eventually.TrueAsync(async () =>
            {
                try
                {
                    return (await client.GetAsync("/readyz")).IsSuccessStatusCode;
                }
                catch (HttpRequestException)
                {
                    return false;
                }
            }, TimeSpan.FromSeconds(60), "the server answers /readyz");

            // A failed sign-in is logged (at Information) inside its request.
            var response = await TestAccounts.SignInAsync(client, "nobody@example.com", "a wrong password for nobody");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);

            JsonElement? signInFailed = null;
            await Eventually.TrueAsync(() =>
            {
                lock (lines)
                {
                    signInFailed = lines.Where(l => l.StartsWith('{')).Select(l => JsonDocument.Parse(l).RootElement)
                        .FirstOrDefault(e => e.GetProperty("Message").GetString() == "Sign-in failed") is { ValueKind: JsonValueKind.Object } found ? found : null;
                }
                return Task.FromResult(signInFailed is not null);
            }, TimeSpan.FromSeconds(10), "the failed sign-in is logged");

            var scopes = signInFailed!.Value.GetProperty("Scopes").EnumerateArray().ToList();
            var traceId = scopes.Where(s => s.ValueKind == JsonValueKind.Object && s.TryGetProperty("TraceId", out _))
                .Select(s => s.GetProperty("TraceId").GetString()).FirstOrDefault();
            Assert.Matches("^[0-9a-f]{32}$", traceId);
            Assert.Equal("Information", signInFailed.Value.GetProperty("LogLevel").GetString());
            lock (lines)
            {
                // No log line in the plain format (the lines that are not JSON are the banner), and none has the password.
                Assert.DoesNotContain(lines, line => line.StartsWith("info: ", StringComparison.Ordinal) || line.StartsWith("warn: ", StringComparison.Ordinal));
                Assert.DoesNotContain(lines, line => line.Contains("a wrong password for nobody", StringComparison.Ordinal));
            }
        }
        finally
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
            folder.Delete(recursive: true);
        }
    }
}
