namespace Latchkey.Tests.Operations;

/// <summary>LATCHKEY_ variables override appsettings.json and are overridden by the command line, with or without host arguments.</summary>
public sealed class ConfigurationPrecedenceTests
{
    // A key appsettings.json sets and that no test depends on: changing it process-wide is harmless.
    private const string Key = "Logging:LogLevel:Microsoft.Hosting.Lifetime";
    private const string Variable = "LATCHKEY_Logging__LogLevel__Microsoft.Hosting.Lifetime";

    [Theory]
    [InlineData(new string[0], "Warning")]
    [InlineData(new[] { "--urls", "http://127.0.0.1:0" }, "Warning")]
    [InlineData(new[] { "--urls", "http://127.0.0.1:0", "--Logging:LogLevel:Microsoft.Hosting.Lifetime=Error" }, "Error")]
    public async Task Prefixed_environment_variables_sit_between_appsettings_and_the_command_line(string[] args, string expected)
    {
        Environment.SetEnvironmentVariable(Variable, "Warning");
        try
        {
            await using var app = Program.BuildWebApp(args);
            Assert.Equal(expected, app.Configuration[Key]);
        }
        finally
        {
            Environment.SetEnvironmentVariable(Variable, null);
        }
    }
}
