using System.Text.Json;
using Latchkey.Common;

namespace Latchkey.Tests.Common;

public sealed class InputEchoTests
{
    [Fact]
    public void Short_input_is_quoted_whole()
    {
        Assert.Equal("'github'", InputEcho.Quote("github"));
        Assert.Equal("''", InputEcho.Quote(null));
    }

    [Fact]
    public void Long_input_is_cut_to_a_prefix_and_its_length_is_named()
    {
        var megabyte = new string('a', 1_048_576);

        var quoted = InputEcho.Quote(megabyte);

        Assert.Equal($"'{new string('a', InputEcho.MaxLength)}…' (1048576 characters)", quoted);
    }

    [Fact]
    public void A_surrogate_pair_is_never_cut_in_two()
    {
        var input = new string('a', InputEcho.MaxLength - 1) + "😀" + "tail";

        var prefix = InputEcho.Prefix(input);

        Assert.Equal(new string('a', InputEcho.MaxLength - 1) + "…", prefix);
        Assert.DoesNotContain(prefix, c => char.IsSurrogate(c));
    }

    [Fact]
    public void A_json_error_about_a_huge_property_name_keeps_its_sentence_and_cuts_the_name()
    {
        var name = new string('p', 1_000_000);
        var exception = Assert.Throws<JsonException>(() => JsonSerializer.Deserialize<Target>($"{{\"{name}\":1}}", Strict));

        var message = InputEcho.JsonError(exception);

        Assert.True(message.Length < 400, message);
        Assert.DoesNotContain(new string('p', InputEcho.MaxLength + 1), message);
        Assert.Contains("could not be mapped to any .NET member", message);
    }

    [Fact]
    public void A_json_error_whose_path_holds_a_huge_name_cuts_the_path_and_keeps_the_position()
    {
        var name = new string('p', 1_000_000);
        var exception = Assert.Throws<JsonException>(() => JsonSerializer.Deserialize<Dictionary<string, int>>($"{{\"{name}\":\"x\"}}"));
        Assert.Contains(" Path: ", exception.Message);

        var message = InputEcho.JsonError(exception);

        Assert.True(message.Length < 400, message);
        Assert.DoesNotContain(new string('p', InputEcho.MaxLength + 1), message);
        Assert.StartsWith("The JSON value could not be converted to System.Int32. Path: $.ppp", message);
        Assert.EndsWith($"| LineNumber: 0 | BytePositionInLine: {exception.BytePositionInLine}.", message);
    }

    [Fact]
    public void A_short_json_error_is_passed_on_as_it_was()
    {
        var exception = Assert.Throws<JsonException>(() => JsonSerializer.Deserialize<Target>("""{"name":1}""", Strict));

        Assert.Equal(exception.Message, InputEcho.JsonError(exception));
    }

    [Theory]
    [InlineData("Failed to bind parameter \"int? limit\" from \"{0}\".")]
    [InlineData("The JSON property '{0}' could not be mapped.")]
    public void A_library_message_repeats_only_a_prefix_of_what_it_quotes(string format)
    {
        var message = InputEcho.LibraryMessage(string.Format(System.Globalization.CultureInfo.InvariantCulture, format, new string('v', 100_000)));

        Assert.Contains(new string('v', InputEcho.MaxLength), message);
        Assert.DoesNotContain(new string('v', InputEcho.MaxLength + 1), message);
    }

    [Fact]
    public void A_library_message_whose_input_holds_a_quote_is_still_cut_as_a_whole()
    {
        var message = InputEcho.LibraryMessage($"The JSON property 'a'{new string('v', 100_000)}' could not be mapped.");

        Assert.True(message.Length <= InputEcho.MaxLibraryMessageLength + 1, $"{message.Length}");
    }

    [Fact]
    public void A_library_message_without_long_quotes_is_unchanged()
    {
        const string message = "Failed to bind parameter \"int? limit\" from \"abc\".";

        Assert.Equal(message, InputEcho.LibraryMessage(message));
    }

    private static readonly JsonSerializerOptions Strict = new() { UnmappedMemberHandling = System.Text.Json.Serialization.JsonUnmappedMemberHandling.Disallow };

    private sealed record Target(string? Name);
}
