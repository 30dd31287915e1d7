using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.RegularExpressions;
using Latchkey.Tests.Infrastructure;

namespace Latchkey.Tests.Operations;

/// <summary>
/// docs/quickstart.md, run as written: its shell blocks in order, with the built <c>latchkey</c>
/// for <c>dotnet run --project src/Latchkey --</c> and two free ports for 5000 and 5100. The two
/// "Terminal" blocks start the server (with the settings the block names) and the sample MCP
/// server; the rest run in one bash, and the test plays the person at the browser: it reads the
/// consent address the script prints, signs in with the password the script printed, approves,
/// and pastes the address the browser would land on at the script's prompt.
/// </summary>
public sealed partial class QuickstartTests
{
    private static readonly string Latchkey = Path.Combine(AppContext.BaseDirectory, "latchkey");

    [Fact]
    public async Task The_offline_quickstart_runs_as_documented()
    {
        var blocks = ShellBlock().Matches(await File.ReadAllTextAsync(Path.Combine(RepositoryFiles.Root, "docs", "quickstart.md")))
            .Select(m => m.Groups[1].Value).ToList();
        var serverBlock = Assert.Single(blocks, b => b.StartsWith("# Terminal 1", StringComparison.Ordinal));
        var sampleBlock = Assert.Single(blocks, b => b.StartsWith("# Terminal 2", StringComparison.Ordinal));
        var walkThrough = blocks.Where(b => b != serverBlock && b != sampleBlock).ToList();
        Assert.True(walkThrough.Count >= 5, "the walk-through's blocks");

        var port = FreePorts.Next();
        var samplePort = FreePorts.Next();
        string Ported(string text) => text.Replace("localhost:5000", $"127.0.0.1:{port}", StringComparison.Ordinal)
            .Replace("5100", samplePort.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal);

        var folder = Directory.CreateTempSubdirectory("latchkey-quickstart-");
        var bin = Directory.CreateDirectory(Path.Combine(folder.FullName, "bin"));
        File.CreateSymbolicLink(Path.Combine(bin.FullName, "latchkey"), Latchkey);
        var environment = new Dictionary<string, string>
        {
            ["DOTNET_ENVIRONMENT"] = "Development",
            ["PATH"] = $"{bin.FullName}:{Environment.GetEnvironmentVariable("PATH")}",
        };
        // The server block's settings, as the block sets them.
        foreach (Match setting in Setting().Matches(serverBlock))
        {
            environment[setting.Groups[1].Value] = setting.Groups[2].Value;
        }
        Assert.Contains("dotnet run --project src/Latchkey", serverBlock);
        Assert.Equal("true", environment["LATCHKEY_Mcp__AllowPrivateNetworks"]);
        var sampleArguments = Ported(sampleBlock.Split("dotnet run --project src/Latchkey --", 2)[1].Split('\n')[0]).Split(' ', StringSplitOptions.RemoveEmptyEntries);

        using var server = Start(folder, environment, ["serve", "--urls", $"http://127.0.0.1:{port}"]);
        using var sample = Start(folder, environment, sampleArguments);
        try
        {
            using var probe = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
            await Eventually.TrueAsync(async () =>
            {
                try
                {
                    return (await probe.GetAsync("/readyz")).IsSuccessStatusCode;
                }
                catch (HttpRequestException)
                {
                    return false;
                }
            }, TimeSpan.FromSeconds(60), "the server answers /readyz");

            var script = "set -euo pipefail\n" + string.Join("\n", walkThrough.Select(Ported));
            var (exitCode, output, error) = await RunWalkThroughAsync(folder, environment, script, port);

            Assert.True(exitCode == 0, $"exit {exitCode}\n--- output\n{output}\n--- errors\n{error}");
            void Shows(string text) => Assert.True(output.Contains(text, StringComparison.Ordinal), $"the output lacks {text}:\n{output}");
            Assert.Matches(@"Provider: provider_custom_\d+", output);
            Assert.Matches(@"Credential: cred_\w+", output);
            // /me with the broker's token, and the same account named by the upstream through the gateway.
            Shows("\"email\":\"you@example.com\"");
            Shows("The token belongs to");
            Assert.Contains("you@example.com", output[output.IndexOf("The token belongs to", StringComparison.Ordinal)..]);
            // The held call answered once approved.
            Shows("approved by a person");
            Assert.False(output.Contains("\"error\"", StringComparison.Ordinal), output);
        }
        finally
        {
            foreach (var process in new[] { sample, server })
            {
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync();
            }
            folder.Delete(recursive: true);
        }
    }

    private static Process Start(DirectoryInfo folder, Dictionary<string, string> environment, string[] arguments)
    {
        var start = new ProcessStartInfo(Latchkey, arguments) { WorkingDirectory = folder.FullName, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var (name, value) in environment)
        {
            start.Environment[name] = value;
        }
        var process = Process.Start(start)!;
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    /// <summary>Runs the script; when it prints the consent address, approves it as the person would and answers the prompt.</summary>
    private static async Task<(int ExitCode, string Output, string Error)> RunWalkThroughAsync(DirectoryInfo folder, Dictionary<string, string> environment, string script, int port)
    {
        var start = new ProcessStartInfo("/bin/bash", ["-c", script])
        {
            WorkingDirectory = folder.FullName,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
        };
        foreach (var (name, value) in environment)
        {
            start.Environment[name] = value;
        }
        var output = new StringBuilder();
        var error = new StringBuilder();
        var consent = new TaskCompletionSource<(string Url, string Password)>(TaskCreationOptions.RunContinuationsAsynchronously);
        string? password = null;
        using var bash = Process.Start(start)!;
        bash.OutputDataReceived += (_, line) =>
        {
            if (line.Data is not { } text)
            {
                return;
            }
            lock (output)
            {
                output.AppendLine(text);
            }
            if (PasswordLine().Match(text) is { Success: true } printed)
            {
                password = printed.Groups[1].Value;
            }
            if (text.StartsWith($"http://127.0.0.1:{port}/auth/authorize?", StringComparison.Ordinal) && password is not null)
            {
                consent.TrySetResult((text.Trim(), password));
            }
        };
        bash.ErrorDataReceived += (_, line) =>
        {
            lock (error)
            {
                error.AppendLine(line.Data);
            }
        };
        bash.BeginOutputReadLine();
        bash.BeginErrorReadLine();

        var exited = bash.WaitForExitAsync();
        if (await Task.WhenAny(consent.Task, exited, Task.Delay(TimeSpan.FromMinutes(3))) == consent.Task)
        {
            var (url, secret) = await consent.Task;
            var landed = await ApproveAsync(port, url, secret);
            await bash.StandardInput.WriteLineAsync(landed);
            await bash.StandardInput.FlushAsync();
        }
        if (await Task.WhenAny(exited, Task.Delay(TimeSpan.FromMinutes(3))) != exited)
        {
            bash.Kill(entireProcessTree: true);
        }
        await bash.WaitForExitAsync();
        lock (output)
        {
            lock (error)
            {
                return (bash.ExitCode, output.ToString(), error.ToString());
            }
        }
    }

    /// <summary>The person at the browser: signs in, approves on the consent page, and reads where the browser was sent.</summary>
    private static async Task<string> ApproveAsync(int port, string consentUrl, string password)
    {
        using var browser = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false, CookieContainer = new CookieContainer() })
        {
            BaseAddress = new Uri($"http://127.0.0.1:{port}"),
        };
        Assert.Equal(HttpStatusCode.Redirect, (await TestAccounts.SignInAsync(browser, "you@example.com", password)).StatusCode);
        var outcome = await OAuthClient.AuthorizeAsync(browser, new Uri(consentUrl).PathAndQuery);
        Assert.True(outcome.Redirect is not null && outcome.Query.ContainsKey("code"),
            $"the consent page did not send the browser back with a code: {outcome.Response.StatusCode} {outcome.Redirect}");
        Assert.StartsWith("http://127.0.0.1:8765/done?", outcome.Redirect!.AbsoluteUri);
        return outcome.Redirect.AbsoluteUri;
    }

    [GeneratedRegex(@"```sh\n(.*?)```", RegexOptions.Singleline)]
    private static partial Regex ShellBlock();

    [GeneratedRegex(@"\b(LATCHKEY_\w+)=(\S+)")]
    private static partial Regex Setting();

    [GeneratedRegex(@"^Password: (\S+)$")]
    private static partial Regex PasswordLine();
}
