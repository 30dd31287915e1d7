using System.Globalization;
using System.Text;

namespace Latchkey.Tests.Fuzz;

/// <summary>Bytes written into a body or URL exactly as given (invalid UTF-8, broken escapes).</summary>
public sealed record RawBytes(byte[] Bytes);

/// <summary>
/// Makes malformed requests from a seeded <see cref="Random"/>: a plausible request for the
/// operation (real ids, real credentials) with one or more things wrong with it, so that most
/// requests get past authentication and routing and reach the code that parses and validates.
/// The same seed and the same world give the same sequence of requests.
/// </summary>
public sealed class MalformedRequestGenerator(Random random, FuzzWorld world)
{
    /// <summary>Strings that have broken parsers, validators and databases before.</summary>
    private static readonly string[] OddStrings =
    [
        "", " ", "\t", "0", "-1", "2147483648", "99999999999999999999999", "1e309", "NaN", "null", "true", "[]", "{}",
        "..", "../../etc/passwd", "/", "\\", "%", "%00", "%zz", "a\u0000b", "\u0000",
        "\u202Eevil\u202C", "\u200F\u200E", "e\u0301\u0302\u0303\u0304\u0305\u0306\u0307", "\uD800", "\uDC00", "x\uD83Dy", "😀", "\uFEFF",
        "ｆｕｌｌ", "İı", "ß", "\u0085", "\u2028", "\r\n", "\r\nX-Injected: 1", "'; DROP TABLE api_keys;--", "\" OR 1=1 --",
        "<script>alert(1)</script>", "${jndi:ldap://x}", "{{7*7}}", "http://", "javascript:alert(1)", "file:///etc/passwd",
        "http://169.254.169.254/latest/meta-data/", "http://[::1]:1/", "https://exa mple.com/", "https://xn--80ak6aa92e.com/",
        "lk_ak_", "lk_at_0000000000000000000000000000000000000000000aaaaaa", "lk_rt_x", "lk_cs_" + new string('A', 49),
        "cred_custom_999", "provider_custom_999", "mcp_00000000000000000000000000000000", "lk_client_nobody",
    ];

    /// <summary>Byte sequences that are not UTF-8: truncated, overlong, surrogate halves, stray continuation bytes, a NUL.</summary>
    private static readonly byte[][] InvalidUtf8 =
    [
        [0xC3, 0x28], [0xFF], [0xFE, 0xFF], [0xC0, 0xAF], [0xE0, 0x80, 0xAF], [0xED, 0xA0, 0x80], [0xED, 0xBF, 0xBF],
        [0x80], [0xBF, 0xBF], [0xF4, 0x90, 0x80, 0x80], [0xE2, 0x82], [0x00], [0xF8, 0x88, 0x80, 0x80, 0x80],
    ];

    private static readonly string[] BrokenEscapes =
        ["%", "%z", "%zz", "%G0", "%C3%28", "%FF", "%ED%A0%80", "%C0%AF", "%E0%80%AF", "%00", "%%", "%2", "%u0041", "%F4%90%80%80", "%2F", "%5C"];

    private static readonly string[] ContentTypes =
    [
        "text/plain", "application/xml", "multipart/form-data", "multipart/form-data; boundary=", "application/json; charset=utf-7",
        "application/json; charset=latin1", "application/json; charset=\"", "application/", "/json", ";;;", "application/json, text/plain",
        "application/x-www-form-urlencoded; charset=utf-16", "application/octet-stream", "image/png", "application/problem+json",
        "APPLICATION/JSON", "application/jsonx", "*/*", "application/json; boundary=x; charset=utf-8; q=0", "\u00e9/\u00e9",
    ];

    private static readonly string[] GrantTypes =
    [
        "authorization_code", "refresh_token", "client_credentials", "password", "implicit", "urn:ietf:params:oauth:grant-type:device_code",
        "urn:ietf:params:oauth:grant-type:token-exchange", "urn:ietf:params:oauth:grant-type:jwt-bearer", "", "AUTHORIZATION_CODE",
    ];

    public RawRequest Next(FuzzTarget target, List<string> mutations)
    {
        var method = target.Method;
        if (Chance(0.03))
        {
            method = Pick(["PUT", "PATCH", "OPTIONS", "HEAD", "TRACE", "FOO", "GET", "POST", "DELETE", "get"]);
            mutations.Add($"method {method}");
        }

        var path = PathFor(target, mutations);
        var query = QueryFor(target, mutations);
        var body = BodyFor(target, mutations, out var contentType);
        if (target.Body == BodyShape.Form && target.Method == "GET" && body.Length > 0)
        {
            // GET endpoints (authorize, userinfo) take their parameters in the query string.
            query = Encoding.Latin1.GetString(body);
            body = [];
            contentType = null;
        }
        var requestTarget = TargetFor(path, query, mutations);
        var headers = HeadersFor(target, mutations, ref contentType, ref body);
        return new RawRequest(method, requestTarget, headers, body);
    }

    // ---------------------------------------------------------------- paths and query strings

    private string PathFor(FuzzTarget target, List<string> mutations)
    {
        var path = target.PathTemplate;
        var start = path.IndexOf('{');
        while (start >= 0)
        {
            var end = path.IndexOf('}', start);
            var name = path[(start + 1)..end];
            var value = PathValue(target, name, mutations);
            path = path[..start] + value + path[(end + 1)..];
            start = path.IndexOf('{', start + value.Length);
        }
        return path;
    }

    private string PathValue(FuzzTarget target, string parameter, List<string> mutations)
    {
        var real = RealIds(target, parameter);
        if (real.Length > 0 && Chance(0.6))
        {
            var id = Pick(real);
            return Chance(0.1) ? MutateCase(id, mutations) : Uri.EscapeDataString(id);
        }
        var junk = Random(5) switch
        {
            0 => Pick(BrokenEscapes),
            1 => new string('a', Pick([300, 5000, 20000])),
            2 => Uri.EscapeDataString(Pick(OddStrings)) is { Length: > 0 } escaped ? escaped : "%20",
            3 => Pick(real.Length > 0 ? real : ["x"]) + Pick(BrokenEscapes),
            _ => string.Concat(Enumerable.Range(0, Random(1, 4)).Select(_ => Uri.EscapeDataString(Pick(OddStrings)))) is { Length: > 0 } joined ? joined : "x",
        };
        mutations.Add($"junk {{{parameter}}}");
        return junk;
    }

    private string[] RealIds(FuzzTarget target, string parameter)
    {
        var path = target.PathTemplate;
        if (parameter == "tool")
        {
            return ["read_repo", "search", "count", "no_such_tool"];
        }
        if (path.StartsWith("/api/keys", StringComparison.Ordinal))
        {
            return target.Destroys ? [world.DecoyApiKeyId, world.ForeignApiKeyId] : [world.ApiKeyId, world.DecoyApiKeyId, world.ForeignApiKeyId];
        }
        if (path.StartsWith("/api/oauth/authorizations", StringComparison.Ordinal))
        {
            return [world.DecoyClientId, world.ForeignClientId];
        }
        if (path.StartsWith("/api/oauth/apps", StringComparison.Ordinal))
        {
            return target.Destroys ? [world.DecoyClientId, world.ForeignClientId] : [world.ClientId, world.DecoyClientId, world.ForeignClientId];
        }
        if (path.StartsWith("/mcp/providers", StringComparison.Ordinal))
        {
            return target.Destroys ? [world.DecoyProviderId] : [world.ProviderId, world.DecoyProviderId];
        }
        if (path.StartsWith("/mcp/credentials", StringComparison.Ordinal) || path.StartsWith("/external-api/v1/integrations", StringComparison.Ordinal))
        {
            return target.Destroys ? [world.DecoyCredentialId] : [world.CredentialId, world.DecoyCredentialId];
        }
        if (path.Contains("/mcp/servers", StringComparison.Ordinal))
        {
            return target.Destroys && !path.EndsWith("/mcp", StringComparison.Ordinal) && !path.EndsWith("/credential", StringComparison.Ordinal)
                ? [world.DecoyMcpServerId]
                : [world.McpServerId, world.DecoyMcpServerId];
        }
        return [];
    }

    private static string MutateCase(string id, List<string> mutations)
    {
        mutations.Add("id in upper case");
        return Uri.EscapeDataString(id.ToUpperInvariant());
    }

    private string QueryFor(FuzzTarget target, List<string> mutations)
    {
        var parts = new List<string>();
        foreach (var name in target.QueryParameters)
        {
            if (Chance(0.7))
            {
                parts.Add($"{name}={(Chance(0.5) ? Random(-5, 500).ToString(CultureInfo.InvariantCulture) : EncodeFormValue(Pick(OddStrings)))}");
            }
        }
        if (Chance(0.15))
        {
            mutations.Add("junk query");
            parts.Add(Random(4) switch
            {
                0 => $"{Pick(target.QueryParameters.Count > 0 ? [.. target.QueryParameters] : new[] { "x" })}=1&{Pick(target.QueryParameters.Count > 0 ? [.. target.QueryParameters] : new[] { "x" })}=2",
                1 => "a=" + Pick(BrokenEscapes),
                2 => Pick(BrokenEscapes) + "=1",
                _ => string.Join('&', Enumerable.Range(0, 500).Select(i => $"p{i}=v")),
            });
        }
        return string.Join('&', parts);
    }

    private string TargetFor(string path, string query, List<string> mutations)
    {
        var target = query.Length > 0 ? $"{path}?{query}" : path;
        if (!Chance(0.06))
        {
            return target;
        }
        var (name, mutated) = Random(8) switch
        {
            0 => ("trailing slash", path + "/" + (query.Length > 0 ? "?" + query : "")),
            1 => ("double slashes", path.Replace("/", "//") + (query.Length > 0 ? "?" + query : "")),
            2 => ("dot segments", "/x/../" + target.TrimStart('/')),
            3 => ("absolute-form target", $"http://{world.ServerAddress.Authority}{target}"),
            4 => ("fragment", target + "#frag"),
            5 => ("broken escape in path", path + Pick(BrokenEscapes) + (query.Length > 0 ? "?" + query : "")),
            6 => ("empty query", path + "?"),
            _ => ("query of escapes", path + "?" + string.Concat(BrokenEscapes)),
        };
        mutations.Add(name);
        return mutated;
    }

    // ---------------------------------------------------------------- bodies

    private byte[] BodyFor(FuzzTarget target, List<string> mutations, out string? contentType)
    {
        switch (target.Body)
        {
            case BodyShape.Json:
                contentType = "application/json";
                return JsonBody(target, mutations);
            case BodyShape.Form:
                contentType = "application/x-www-form-urlencoded";
                return FormBody(target, mutations);
            case BodyShape.Image:
                contentType = Pick(["image/png", "image/jpeg", "image/webp", "image/svg+xml"]);
                return ImageBody(mutations);
            default:
                contentType = null;
                if (Chance(0.15))
                {
                    mutations.Add("unexpected body");
                    contentType = "application/json";
                    return Encoding.UTF8.GetBytes("{\"unexpected\":true}");
                }
                return [];
        }
    }

    private byte[] JsonBody(FuzzTarget target, List<string> mutations)
    {
        var fields = SeedJson(target);
        if (Chance(0.15))
        {
            mutations.Add("plausible JSON");
            return Json.Write(fields);
        }
        if (Chance(0.12))
        {
            return WholeBodyMutation(fields, mutations);
        }
        var rounds = Random(1, 4);
        for (var round = 0; round < rounds; round++)
        {
            MutateFields(fields, mutations);
        }
        var bytes = Json.Write(fields);
        if (Chance(0.08))
        {
            mutations.Add("truncated");
            return bytes[..Random(bytes.Length)];
        }
        return bytes;
    }

    private byte[] WholeBodyMutation(List<KeyValuePair<string, object?>> fields, List<string> mutations)
    {
        var (name, body) = Random(14) switch
        {
            0 => ("empty body", Array.Empty<byte>()),
            1 => ("top-level array", Encoding.UTF8.GetBytes("[" + Encoding.UTF8.GetString(Json.Write(fields)) + "]")),
            2 => ("top-level string", "\"x\""u8.ToArray()),
            3 => ("top-level null", "null"u8.ToArray()),
            4 => ("top-level number", "42"u8.ToArray()),
            5 => ("deeply nested arrays", Encoding.ASCII.GetBytes(new string('[', 100_000))),
            6 => ("deeply nested objects", Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat("{\"a\":", 5_000)) + "1" + new string('}', 5_000))),
            7 => ("random bytes", RandomBytes(Random(1, 400))),
            8 => ("byte order mark", [0xEF, 0xBB, 0xBF, .. Json.Write(fields)]),
            9 => ("comments and trailing commas", Encoding.UTF8.GetBytes("/* c */ {\"name\":\"x\", // c\n}")),
            10 => ("UTF-16 JSON", Encoding.Unicode.GetBytes(Encoding.UTF8.GetString(Json.Write(fields)))),
            11 => ("single quotes", Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(Json.Write(fields)).Replace('"', '\''))),
            12 => ("form body to JSON endpoint", Encoding.ASCII.GetBytes("name=x&scopes=IDENTITY")),
            _ => ("oversized body", Encoding.ASCII.GetBytes("{\"name\":\"" + new string('x', 1_100_000) + "\"}")),
        };
        mutations.Add(name);
        return body;
    }

    private void MutateFields(List<KeyValuePair<string, object?>> fields, List<string> mutations)
    {
        var index = fields.Count > 0 ? Random(fields.Count) : -1;
        var key = index >= 0 ? fields[index].Key : "name";
        switch (Random(7))
        {
            case 0 when index >= 0:
                mutations.Add($"drop {key}");
                fields.RemoveAt(index);
                break;
            case 1:
                mutations.Add($"duplicate {key}");
                fields.Add(KeyValuePair.Create(key, OddValue(mutations)));
                break;
            case 2:
                var unknown = Pick(["admin", "id", "owner_id", "user_id", "__proto__", "constructor", "", "\u0000", "NAME", "scopes ", "client_secret"]);
                mutations.Add($"unknown field '{unknown}'");
                fields.Add(KeyValuePair.Create(unknown, OddValue(mutations)));
                break;
            default:
                if (index >= 0)
                {
                    mutations.Add($"{key} = odd");
                    fields[index] = KeyValuePair.Create(key, OddValue(mutations));
                }
                break;
        }
    }

    /// <summary>A value of the wrong type, size or encoding.</summary>
    private object? OddValue(List<string> mutations) => Random(14) switch
    {
        0 => null,
        1 => Chance(0.5),
        2 => Pick<object>([0L, -1L, long.MaxValue, long.MinValue, 1.5, -0.0, 1e308]),
        3 => new RawBytes(Encoding.ASCII.GetBytes(Pick(["1e309", "-1e309", "123456789012345678901234567890", "01", "1.", ".5", "NaN", "Infinity", "0x10", "+1"]))),
        4 => new List<object?> { Pick(OddStrings), 1L, null },
        5 => new List<KeyValuePair<string, object?>> { KeyValuePair.Create<string, object?>("a", Pick(OddStrings)) },
        6 => new string(Pick(['x', 'é', '\uD83D']), Pick([101, 2049, 70_000])),
        7 => new RawBytes([(byte)'"', .. Encoding.UTF8.GetBytes("a"), .. Pick(InvalidUtf8), .. Encoding.UTF8.GetBytes("b"), (byte)'"']),
        8 => new RawBytes(Encoding.ASCII.GetBytes(Pick(["\"\\ud800\"", "\"\\udc00x\"", "\"\\u0000\"", "\"\\uZZZZ\"", "\"\\x41\"", "\"unterminated", "\"a\u0001b\""]))),
        9 => new List<object?>(Enumerable.Range(0, Pick([100, 5000])).Select(i => (object?)$"s{i}")),
        10 => Pick(["IDENTITY", "openid", "READ_GRAPH", "USE_TOOLS", "custom", "github", "read"]),
        11 => Pick(["2000-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z", "tomorrow", "2030-02-30T00:00:00Z", "2030-01-01T00:00:00+99:00"]),
        12 => Pick([world.RedirectUri, world.UpstreamUrl, world.ProviderBaseUrl + "token", "https://example.com/\u0000", "http://127.0.0.1:1/"]),
        _ => Pick(OddStrings),
    };

    private List<KeyValuePair<string, object?>> SeedJson(FuzzTarget target)
    {
        static KeyValuePair<string, object?> F(string key, object? value) => KeyValuePair.Create(key, value);
        var path = target.PathTemplate;
        return path switch
        {
            "/api/keys" => [F("name", "fuzz key"), F("scopes", new List<object?> { "IDENTITY" }), F("expires_at", "2031-01-01T00:00:00Z")],
            "/api/oauth/apps" or "/api/oauth/apps/{clientId}" =>
            [
                F("name", "Fuzz app"), F("description", "made by the fuzz campaign"), F("homepage_url", "https://app.example.com"),
                F("redirect_uris", new List<object?> { world.RedirectUri }), F("scopes", new List<object?> { "IDENTITY", "openid" }), F("confidential", true),
            ],
            "/api/oauth/register" =>
            [
                F("redirect_uris", new List<object?> { "https://client.example.com/cb" }), F("client_name", "Fuzz client"),
                F("token_endpoint_auth_method", Pick(["none", "client_secret_basic", "client_secret_post"])),
                F("grant_types", new List<object?> { "authorization_code", "refresh_token" }), F("response_types", new List<object?> { "code" }),
                F("scope", "IDENTITY openid"), F("logo_uri", "https://client.example.com/logo.png"), F("application_type", "web"),
            ],
            "/mcp/oauth/init" or "/external-api/v1/integrations" =>
                [F("provider_id", world.ProviderId), F("redirect_uri", "https://agent.example.com/done"), F("scopes", new List<object?> { "read" })],
            "/mcp/oauth/callback" => [F("code", "code-" + Random(1000)), F("state", world.FlowState)],
            "/mcp/oauth/exchange-token" or "/mcp/oauth/cancel" => [F("state", world.FlowState)],
            "/mcp/oauth/status" => [F("state", world.FlowState), F("credential_id", world.CredentialId)],
            "/mcp/oauth/refresh-token" => [F("credential_id", world.CredentialId)],
            "/mcp/providers" or "/mcp/providers/{id}" =>
            [
                F("provider", "custom"), F("client_id", "fuzz-client"), F("client_secret", world.ProviderSecret), F("name", "Fuzz provider"),
                F("custom", new List<KeyValuePair<string, object?>>
                {
                    F("name", "Fuzz"), F("authorize_url", world.ProviderBaseUrl + "authorize"), F("token_url", world.ProviderBaseUrl + "token"),
                    F("default_scopes", new List<object?> { "read" }), F("pkce", true), F("expires", true), F("refreshable", true),
                }),
            ],
            "/mcp/servers" or "/mcp/servers/{id}" =>
                [F("name", "Fuzz tools"), F("url", world.UpstreamUrl), F("default_credential_id", world.CredentialId), F("default_header", "Authorization")],
            "/mcp/servers/{id}/tools/{tool}/credential" => [F("credential_id", world.CredentialId), F("header", "X-Upstream-Token")],
            "/mcp/servers/{id}/mcp" => Pick<List<KeyValuePair<string, object?>>>(
            [
                [F("jsonrpc", "2.0"), F("id", 1L), F("method", "tools/list")],
                [F("jsonrpc", "2.0"), F("id", "a"), F("method", "initialize"), F("params", new List<KeyValuePair<string, object?>>
                {
                    F("protocolVersion", "2025-06-18"), F("capabilities", new List<KeyValuePair<string, object?>>()),
                    F("clientInfo", new List<KeyValuePair<string, object?>> { F("name", "fuzz"), F("version", "1") }),
                })],
                [F("jsonrpc", "2.0"), F("id", 2L), F("method", "tools/call"), F("params", new List<KeyValuePair<string, object?>>
                {
                    F("name", Pick(["read_repo", "search", "nope"])), F("arguments", new List<KeyValuePair<string, object?>> { F("repo", "a/b"), F("query", "q") }),
                })],
            ]),
            _ => [F("value", "x")],
        };
    }

    private byte[] FormBody(FuzzTarget target, List<string> mutations)
    {
        var fields = SeedForm(target);
        if (Chance(0.1))
        {
            mutations.Add("plausible form");
        }
        else
        {
            var rounds = Random(1, 4);
            for (var round = 0; round < rounds; round++)
            {
                var index = fields.Count > 0 ? Random(fields.Count) : -1;
                var key = index >= 0 ? fields[index].Key : "client_id";
                switch (Random(9))
                {
                    case 0 when index >= 0:
                        mutations.Add($"drop {key}");
                        fields.RemoveAt(index);
                        break;
                    case 1:
                        mutations.Add($"duplicate {key}");
                        fields.Add(KeyValuePair.Create(key, index >= 0 && Chance(0.5) ? fields[index].Value : EncodeFormValue(Pick(OddStrings))));
                        break;
                    case 2 when index >= 0:
                        mutations.Add($"{key} broken escape");
                        fields[index] = KeyValuePair.Create(key, fields[index].Value + Pick(BrokenEscapes));
                        break;
                    case 3 when index >= 0:
                        mutations.Add($"{key} huge");
                        fields[index] = KeyValuePair.Create(key, new string('A', Pick([5_000, 70_000, 600_000])));
                        break;
                    case 4:
                        var unknown = Pick(["request", "request_uri", "assertion", "client_assertion", "client_assertion_type", "audience", "resource", "prompt", "max_age", "nonce", "id_token_hint", "claims", "response_mode"]);
                        mutations.Add($"add {unknown}");
                        fields.Add(KeyValuePair.Create(unknown, EncodeFormValue(Pick([.. OddStrings, "eyJhbGciOiJub25lIn0.e30.", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer", "0", "form_post"]))));
                        break;
                    case 5 when index >= 0:
                        mutations.Add($"{key} mangled");
                        fields[index] = KeyValuePair.Create(key, Mangle(Uri.UnescapeDataString(fields[index].Value)));
                        break;
                    default:
                        if (index >= 0)
                        {
                            mutations.Add($"{key} = odd");
                            fields[index] = KeyValuePair.Create(key, EncodeFormValue(Pick(OddStrings)));
                        }
                        break;
                }
            }
        }
        var body = string.Join('&', fields.Select(f => f.Value is null ? f.Key : $"{f.Key}={f.Value}"));
        if (Chance(0.05))
        {
            mutations.Add("odd separators");
            body = body.Replace('&', Pick([';', '\n', '&'])) + Pick(["&", "&&", "&=", "=", "&a"]);
        }
        var bytes = Encoding.Latin1.GetBytes(body);
        if (Chance(0.05))
        {
            mutations.Add("raw invalid UTF-8 in form");
            bytes = [.. bytes, .. "&state=a"u8, .. Pick(InvalidUtf8)];
        }
        if (Chance(0.05))
        {
            mutations.Add("JSON where a form is expected");
            return Json.Write(fields.Select(f => KeyValuePair.Create<string, object?>(f.Key, Uri.UnescapeDataString(f.Value))).ToList());
        }
        return bytes;
    }

    /// <summary>A real value made slightly wrong: a character changed, cut short, extended, case changed.</summary>
    private string Mangle(string value)
    {
        if (value.Length == 0)
        {
            return EncodeFormValue(Pick(OddStrings));
        }
        var mangled = Random(5) switch
        {
            0 => value[..^1] + (value[^1] == 'a' ? 'b' : 'a'),
            1 => value[..Random(value.Length)],
            2 => value + Pick(["x", " ", "\u0000", "é", "%"]),
            3 => value.ToUpperInvariant(),
            _ => " " + value,
        };
        return EncodeFormValue(mangled);
    }

    private List<KeyValuePair<string, string>> SeedForm(FuzzTarget target)
    {
        static KeyValuePair<string, string> F(string key, string value) => KeyValuePair.Create(key, EncodeFormValue(value));
        var clientAuth = new List<KeyValuePair<string, string>>();
        if (Chance(0.7))
        {
            clientAuth.Add(F("client_id", Pick([world.ClientId, world.ClientId, world.DecoyClientId, "lk_client_nobody"])));
            if (Chance(0.8))
            {
                clientAuth.Add(F("client_secret", Pick([world.ClientSecret, world.ClientSecret, "lk_cs_wrong"])));
            }
        }
        var path = target.PathTemplate;
        if (path.EndsWith("/token", StringComparison.Ordinal))
        {
            var grant = Pick(GrantTypes);
            var fields = new List<KeyValuePair<string, string>> { F("grant_type", grant) };
            switch (grant)
            {
                case "authorization_code":
                    fields.Add(F("code", Pick(["lk_ac_x", "code", new string('c', 200), world.AccessToken])));
                    fields.Add(F("redirect_uri", world.RedirectUri));
                    fields.Add(F("code_verifier", Pick(["short", new string('v', 43), new string('v', 129), "v\u00e9rifier" + new string('x', 40)])));
                    break;
                case "refresh_token":
                    fields.Add(F("refresh_token", Pick([world.RefreshToken, world.AccessToken, "lk_rt_short", world.RefreshToken + "x"])));
                    if (Chance(0.4))
                    {
                        fields.Add(F("scope", Pick(["IDENTITY", "IDENTITY READ_GRAPH", "openid offline_access", "ROOT"])));
                    }
                    break;
                case "client_credentials":
                    fields.Add(F("scope", Pick(["IDENTITY", "READ_GRAPH", "openid", "", "ROOT"])));
                    break;
                case "password":
                    fields.Add(F("username", "someone@example.com"));
                    fields.Add(F("password", "nope"));
                    break;
            }
            if (Chance(0.2))
            {
                fields.Add(F("resource", Pick(["https://tools.example.com/mcp", "not a uri", "urn:x", "https://a.example/#frag"])));
            }
            return [.. fields, .. clientAuth];
        }
        if (path.EndsWith("/introspect", StringComparison.Ordinal) || path.EndsWith("/revoke", StringComparison.Ordinal))
        {
            var fields = new List<KeyValuePair<string, string>>
            {
                F("token", Pick([world.AccessToken, world.RefreshToken, world.ApiKey, "lk_at_junk", "eyJhbGciOiJub25lIn0.e30.", ""])),
            };
            if (Chance(0.5))
            {
                fields.Add(F("token_type_hint", Pick(["access_token", "refresh_token", "id_token", "authorization_code", "junk"])));
            }
            return [.. fields, .. clientAuth];
        }
        if (path == "/auth/authorize")
        {
            var fields = new List<KeyValuePair<string, string>>
            {
                F("response_type", Pick(["code", "code", "token", "id_token", "code id_token", "none", ""])),
                F("client_id", Pick([world.ClientId, world.DecoyClientId, world.ForeignClientId, "lk_client_nobody"])),
                F("redirect_uri", Pick([world.RedirectUri, world.RedirectUri, "https://evil.example.com/cb", "http://127.0.0.1:1/cb", "not a uri"])),
                F("scope", Pick(["IDENTITY", "openid IDENTITY", "openid offline_access", "ROOT", "IDENTITY IDENTITY"])),
                F("state", "fuzz-state-" + Random(1000)),
                F("code_challenge", Pick(["E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "short", new string('c', 200)])),
                F("code_challenge_method", Pick(["S256", "S256", "plain", "s256", ""])),
            };
            if (target.Method == "POST" && Chance(0.5))
            {
                fields.Add(F("decision", Pick(["approve", "deny", "maybe"])));
                fields.Add(F("__RequestVerificationToken", "CfDJ8junk"));
            }
            return fields;
        }
        if (path.EndsWith("/userinfo", StringComparison.Ordinal))
        {
            return Chance(0.3) ? [F("access_token", Pick([world.AccessToken, "lk_at_junk"]))] : [];
        }
        return [.. clientAuth];
    }

    private byte[] ImageBody(List<string> mutations)
    {
        byte[] png = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 0x0D, 0x49, 0x48, 0x44, 0x52, 0, 0, 0, 1, 0, 0, 0, 1, 8, 6, 0, 0, 0];
        var (name, body) = Random(7) switch
        {
            0 => ("truncated PNG", png[..Random(png.Length)]),
            1 => ("empty image", Array.Empty<byte>()),
            2 => ("SVG with script", Encoding.UTF8.GetBytes("<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>")),
            3 => ("SVG with entity", Encoding.UTF8.GetBytes("<!DOCTYPE svg [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><svg>&x;</svg>")),
            4 => ("random image bytes", RandomBytes(Random(1, 2000))),
            5 => ("huge image", new byte[Pick([300_000, 1_200_000])]),
            _ => ("PNG header only", png),
        };
        mutations.Add(name);
        return body;
    }

    // ---------------------------------------------------------------- headers

    private List<KeyValuePair<string, string>> HeadersFor(FuzzTarget target, List<string> mutations, ref string? contentType, ref byte[] body)
    {
        var headers = new List<KeyValuePair<string, string>>();
        var host = world.ServerAddress.Authority;
        if (Chance(0.05))
        {
            host = Pick(["", "evil.example.com", "127.0.0.1:99999", "[::1", "exa mple.com", "ünïcode.example", new string('h', 5000), "127.0.0.1:1, evil.example.com", "localhost:0"]);
            mutations.Add($"Host '{(host.Length > 40 ? host[..40] + "…" : host)}'");
        }
        if (!Chance(0.01))
        {
            headers.Add(KeyValuePair.Create("Host", host));
        }
        else
        {
            mutations.Add("no Host");
        }
        if (target.PathTemplate.EndsWith("/mcp", StringComparison.Ordinal) && target.Method != "DELETE")
        {
            headers.Add(KeyValuePair.Create("Accept", "application/json, text/event-stream"));
        }

        var authenticated = !Chance(0.1);
        if (!authenticated)
        {
            mutations.Add("no credentials");
        }
        else
        {
            AddCredentials(target, headers, mutations);
        }

        if (Chance(0.12))
        {
            contentType = Pick(ContentTypes);
            mutations.Add($"Content-Type '{contentType}'");
        }
        else if (Chance(0.04))
        {
            contentType = null;
            mutations.Add("no Content-Type");
        }
        if (contentType is not null)
        {
            headers.Add(KeyValuePair.Create("Content-Type", contentType));
        }

        if (Chance(0.08))
        {
            AbuseHeaders(headers, mutations);
        }

        if (body.Length > 0 && Chance(0.05))
        {
            mutations.Add("chunked body");
            headers.Add(KeyValuePair.Create("Transfer-Encoding", "chunked"));
            body = Chunk(body);
        }
        else if (body.Length > 0 || Chance(0.5))
        {
            headers.Add(KeyValuePair.Create("Content-Length", body.Length.ToString(CultureInfo.InvariantCulture)));
        }
        headers.Add(KeyValuePair.Create("Connection", "close"));
        return headers;
    }

    private void AddCredentials(FuzzTarget target, List<KeyValuePair<string, string>> headers, List<string> mutations)
    {
        switch (target.Auth)
        {
            case CallerAuth.Session:
                headers.Add(KeyValuePair.Create("Cookie", world.SessionCookie));
                if (Chance(0.1))
                {
                    mutations.Add("API key instead of a session");
                    headers.Add(KeyValuePair.Create("X-API-Key", world.ApiKey));
                }
                break;
            case CallerAuth.ApiKey:
                if (Chance(0.15))
                {
                    mutations.Add("bearer access token");
                    headers.Add(KeyValuePair.Create("Authorization", "Bearer " + world.AccessToken));
                }
                else
                {
                    headers.Add(KeyValuePair.Create("X-API-Key", world.ApiKey));
                }
                break;
            case CallerAuth.Bearer:
                headers.Add(KeyValuePair.Create("Authorization", "Bearer " + (target.PathTemplate.EndsWith("/register", StringComparison.Ordinal) ? world.InitialAccessToken : world.AccessToken)));
                break;
            case CallerAuth.OAuthClient:
                if (Chance(0.3))
                {
                    mutations.Add("client_secret_basic");
                    headers.Add(KeyValuePair.Create("Authorization", Basic($"{Uri.EscapeDataString(world.ClientId)}:{Uri.EscapeDataString(world.ClientSecret)}")));
                }
                break;
            case CallerAuth.None when target.PathTemplate == "/auth/authorize":
                if (Chance(0.6))
                {
                    headers.Add(KeyValuePair.Create("Cookie", world.SessionCookie));
                }
                break;
        }
        if (Chance(0.08))
        {
            var (name, added) = Random(11) switch
            {
                0 => ("duplicated Authorization", new[] { ("Authorization", "Bearer " + world.AccessToken), ("Authorization", "Bearer lk_at_other") }),
                1 => ("duplicated X-API-Key", new[] { ("X-API-Key", world.ApiKey), ("X-API-Key", world.ApiKey) }),
                2 => ("X-API-Key and a bearer", new[] { ("X-API-Key", world.ApiKey), ("Authorization", "Bearer " + world.ApiKey) }),
                3 => ("malformed Basic", new[] { ("Authorization", Pick(["Basic", "Basic ", "Basic !!!!", "Basic =", "Basic " + Convert.ToBase64String("nocolon"u8), "Basic " + Convert.ToBase64String([0xC3, 0x28, (byte)':', 0xFF]), "Basic " + Convert.ToBase64String("%zz:%zz"u8), "Basic " + Convert.ToBase64String(":"u8), "Basic " + new string('A', 9000)])) }),
                4 => ("Basic with the wrong secret", new[] { ("Authorization", Basic($"{world.ClientId}:lk_cs_wrong")) }),
                5 => ("odd bearer", new[] { ("Authorization", Pick(["Bearer", "Bearer ", "Bearer  " + world.AccessToken, "bearer " + world.AccessToken, "Bearer " + world.AccessToken + " x", "Bearer lk_ak_x", "Negotiate abc", "Bearer " + world.RefreshToken, "Bearer \u00e9\u00e9"])) }),
                6 => ("mangled API key", new[] { ("X-API-Key", Uri.UnescapeDataString(Mangle(world.ApiKey)).Replace("\u0000", "", StringComparison.Ordinal)) }),
                7 => ("empty X-API-Key", new[] { ("X-API-Key", "") }),
                8 => ("API key as bearer", new[] { ("Authorization", "Bearer " + world.ApiKey) }),
                9 => ("junk cookie", new[] { ("Cookie", "latchkey.session=CfDJ8" + new string('x', 200) + "; latchkey.session=x") }),
                _ => ("refresh token as API key", new[] { ("X-API-Key", world.RefreshToken) }),
            };
            mutations.Add(name);
            headers.AddRange(added.Select(h => KeyValuePair.Create(h.Item1, h.Item2)));
        }
    }

    private void AbuseHeaders(List<KeyValuePair<string, string>> headers, List<string> mutations)
    {
        switch (Random(7))
        {
            case 0:
                mutations.Add("huge header");
                headers.Add(KeyValuePair.Create("X-Junk", new string('j', Pick([8_000, 40_000]))));
                break;
            case 1:
                mutations.Add("many headers");
                headers.AddRange(Enumerable.Range(0, Pick([120, 400])).Select(i => KeyValuePair.Create($"X-H{i}", "v")));
                break;
            case 2:
                mutations.Add("Latin-1 header value");
                headers.Add(KeyValuePair.Create("X-Name", "caf\u00e9 \u00ff"));
                break;
            case 3:
                mutations.Add("forwarded headers");
                headers.Add(KeyValuePair.Create("X-Forwarded-Host", "evil.example.com"));
                headers.Add(KeyValuePair.Create("X-Forwarded-Proto", "gopher"));
                headers.Add(KeyValuePair.Create("X-Forwarded-For", "not an address, 300.1.1.1"));
                break;
            case 4:
                mutations.Add("odd Accept");
                headers.Add(KeyValuePair.Create("Accept", Pick(["*/*;q=abc", "text/html", "application/xml", ";;", "application/json;q=0"])));
                break;
            case 5:
                mutations.Add("Expect header");
                headers.Add(KeyValuePair.Create("Expect", Pick(["100-continue", "junk"])));
                break;
            default:
                mutations.Add("duplicated Content-Type");
                headers.Add(KeyValuePair.Create("Content-Type", "text/plain"));
                break;
        }
    }

    // ---------------------------------------------------------------- helpers

    private static string Basic(string credentials) => "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes(credentials));

    private static byte[] Chunk(byte[] body)
    {
        var output = new MemoryStream();
        for (var offset = 0; offset < body.Length; offset += 1000)
        {
            var size = Math.Min(1000, body.Length - offset);
            output.Write(Encoding.ASCII.GetBytes(size.ToString("x", CultureInfo.InvariantCulture) + "\r\n"));
            output.Write(body, offset, size);
            output.Write("\r\n"u8);
        }
        output.Write("0\r\n\r\n"u8);
        return output.ToArray();
    }

    /// <summary>Percent-encodes UTF-8 like a form would; a lone surrogate becomes the bytes of its code unit (CESU-8), which is not UTF-8.</summary>
    public static string EncodeFormValue(string value)
    {
        var text = new StringBuilder();
        foreach (var rune in Split(value))
        {
            foreach (var b in rune)
            {
                text.Append(b is (>= (byte)'a' and <= (byte)'z') or (>= (byte)'A' and <= (byte)'Z') or (>= (byte)'0' and <= (byte)'9') or (byte)'-' or (byte)'_' or (byte)'.' or (byte)'~'
                    ? ((char)b).ToString()
                    : $"%{b:X2}");
            }
        }
        return text.ToString();

        static IEnumerable<byte[]> Split(string value)
        {
            for (var i = 0; i < value.Length; i++)
            {
                if (char.IsHighSurrogate(value[i]) && i + 1 < value.Length && char.IsLowSurrogate(value[i + 1]))
                {
                    yield return Encoding.UTF8.GetBytes(value.Substring(i++, 2));
                }
                else if (char.IsSurrogate(value[i]))
                {
                    int c = value[i];
                    yield return [(byte)(0xE0 | (c >> 12)), (byte)(0x80 | ((c >> 6) & 0x3F)), (byte)(0x80 | (c & 0x3F))];
                }
                else
                {
                    yield return Encoding.UTF8.GetBytes(value[i].ToString());
                }
            }
        }
    }

    private byte[] RandomBytes(int count)
    {
        var bytes = new byte[count];
        random.NextBytes(bytes);
        return bytes;
    }

    private bool Chance(double probability) => random.NextDouble() < probability;

    private int Random(int max) => random.Next(max);

    private int Random(int min, int max) => random.Next(min, max);

    private T Pick<T>(IReadOnlyList<T> items) => items[random.Next(items.Count)];
}

/// <summary>
/// A JSON writer that writes what it is given even when that is not valid: duplicate keys (a list
/// of pairs), lone surrogates as <c>\uD800</c> escapes, and <see cref="RawBytes"/> verbatim.
/// </summary>
public static class Json
{
    public static byte[] Write(object? value)
    {
        var output = new MemoryStream();
        Write(output, value);
        return output.ToArray();
    }

    private static void Write(MemoryStream output, object? value)
    {
        switch (value)
        {
            case null:
                output.Write("null"u8);
                break;
            case bool flag:
                output.Write(flag ? "true"u8 : "false"u8);
                break;
            case long number:
                output.Write(Encoding.ASCII.GetBytes(number.ToString(CultureInfo.InvariantCulture)));
                break;
            case double number:
                output.Write(Encoding.ASCII.GetBytes(number.ToString("R", CultureInfo.InvariantCulture)));
                break;
            case string text:
                WriteString(output, text);
                break;
            case RawBytes raw:
                output.Write(raw.Bytes);
                break;
            case List<KeyValuePair<string, object?>> fields:
                output.WriteByte((byte)'{');
                for (var i = 0; i < fields.Count; i++)
                {
                    if (i > 0)
                    {
                        output.WriteByte((byte)',');
                    }
                    WriteString(output, fields[i].Key);
                    output.WriteByte((byte)':');
                    Write(output, fields[i].Value);
                }
                output.WriteByte((byte)'}');
                break;
            case List<object?> items:
                output.WriteByte((byte)'[');
                for (var i = 0; i < items.Count; i++)
                {
                    if (i > 0)
                    {
                        output.WriteByte((byte)',');
                    }
                    Write(output, items[i]);
                }
                output.WriteByte((byte)']');
                break;
            default:
                throw new ArgumentException($"Cannot write {value.GetType()}", nameof(value));
        }
    }

    private static void WriteString(MemoryStream output, string text)
    {
        output.WriteByte((byte)'"');
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (c is '"' or '\\')
            {
                output.Write([(byte)'\\', (byte)c]);
            }
            else if (c < 0x20 || (char.IsSurrogate(c) && !(char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
                                                      && !(char.IsLowSurrogate(c) && i > 0 && char.IsHighSurrogate(text[i - 1]))))
            {
                output.Write(Encoding.ASCII.GetBytes($"\\u{(int)c:x4}"));
            }
            else if (char.IsHighSurrogate(c))
            {
                output.Write(Encoding.UTF8.GetBytes(text.Substring(i++, 2)));
            }
            else
            {
                output.Write(Encoding.UTF8.GetBytes(c.ToString()));
            }
        }
        output.WriteByte((byte)'"');
    }
}
