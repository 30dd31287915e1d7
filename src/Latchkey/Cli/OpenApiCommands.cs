using System.CommandLine;
using Latchkey.Features.ApiDocs;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.OpenApi;

namespace Latchkey.Cli;

/// <summary><c>latchkey openapi export [file]</c>: the OpenAPI document, without starting the web server.</summary>
public static class OpenApiCommands
{
    public static Command Create(CliContext context)
    {
        var file = new Argument<FileInfo?>("file")
        {
            Description = "Where to write the document; standard output when omitted.",
            Arity = ArgumentArity.ZeroOrOne,
        };
        var export = new Command("export", "Write the OpenAPI 3.1 document (the same as GET /openapi/v1.json).") { file };
        export.SetAction((parse, cancellationToken) => context.RunAsync(parse, async (services, output, ct) =>
        {
            var provider = services.GetRequiredKeyedService<IOpenApiDocumentProvider>(ApiDocsSetup.DocumentName);
            var document = await provider.GetOpenApiDocumentAsync(ct);
            var json = await document.SerializeAsJsonAsync(OpenApiSpecVersion.OpenApi3_1, ct);
            var target = parse.GetValue(file);
            if (target is null)
            {
                await output.WriteLineAsync(json);
                return CliContext.Success;
            }
            if (target.Directory is { Exists: false } directory)
            {
                directory.Create();
            }
            await File.WriteAllTextAsync(target.FullName, json, ct);
            await parse.InvocationConfiguration.Error.WriteLineAsync($"Wrote the OpenAPI document to {target.FullName}.");
            return CliContext.Success;
        }, cancellationToken, migrate: false, routeEndpoints: true));

        return new Command("openapi", "The API description.") { export };
    }
}
