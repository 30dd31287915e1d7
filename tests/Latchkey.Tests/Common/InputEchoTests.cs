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
}
