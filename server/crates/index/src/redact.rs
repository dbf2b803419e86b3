//! Redaction: replacing strings that look like secrets with [`REDACTED`].
//!
//! Owns: the patterns (cloud and SaaS key formats, JWTs, private key blocks, URL passwords,
//! values assigned to password/secret/token/key-like names, long key-ish blobs).
//! Must not: be skipped — files are redacted before they are chunked and stored, and every
//! snippet and symbol signature is redacted again on the way out, so no secret reaches a
//! prompt even from an index built by an older version.
//!
//! Redaction keeps the surrounding code intact (names, quotes, operators) and replaces only the
//! secret, so the text still reads as code: `password = "<redacted>"`.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::{Captures, Regex, RegexSet};

/// What a secret is replaced with.
pub const REDACTED: &str = "<redacted>";

/// Patterns, in the order they are applied, each with the kind of secret it finds (the name
/// [`redact_counted`] counts it under). A pattern with a group named `s` replaces only that
/// group; one without replaces its whole match.
const PATTERNS: &[(&str, Guard, &str)] = &[
    // PEM / OpenSSH / PGP private key blocks (an unterminated block runs to the end).
    (
        "private_key",
        Guard::None,
        r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY[A-Z ]*-----(?s:.*?)(?:-----END[A-Z0-9 ]*PRIVATE KEY[A-Z ]*-----|\z)",
    ),
    // AWS access key ids.
    (
        "aws_key",
        Guard::None,
        r"\b(?P<s>(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|ABIA|ACCA)[0-9A-Z]{16})\b",
    ),
    // GitHub tokens.
    (
        "github_token",
        Guard::None,
        r"\b(?P<s>(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{20,})",
    ),
    // GitLab personal tokens.
    (
        "gitlab_token",
        Guard::None,
        r"\b(?P<s>glpat-[A-Za-z0-9_\-]{20,})",
    ),
    // Slack tokens and webhooks.
    (
        "slack_token",
        Guard::None,
        r"\b(?P<s>xox[abposre]-[A-Za-z0-9\-]{10,})",
    ),
    (
        "slack_webhook",
        Guard::None,
        r"hooks\.slack\.com/services/(?P<s>[A-Za-z0-9/]{16,})",
    ),
    // OpenAI / Anthropic style keys, Stripe keys.
    (
        "api_key",
        Guard::None,
        r"\b(?P<s>sk-(?:proj-|ant-|live-|test-)?[A-Za-z0-9_\-]{20,})",
    ),
    (
        "stripe_key",
        Guard::None,
        r"\b(?P<s>[rsp]k_(?:live|test)_[A-Za-z0-9]{16,})",
    ),
    // Google API keys.
    (
        "google_api_key",
        Guard::None,
        r"\b(?P<s>AIza[0-9A-Za-z_\-]{35})",
    ),
    // JWT-like base64url JSON.
    (
        "jwt",
        Guard::None,
        r"\b(?P<s>eyJ[A-Za-z0-9_\-]{16,}(?:\.[A-Za-z0-9_\-]*){0,2})",
    ),
    // Bearer tokens in headers.
    (
        "bearer_token",
        Guard::None,
        r"(?i)\bbearer\s+(?P<s>[A-Za-z0-9._~+/\-]{20,}=*)",
    ),
    // Passwords in URLs: scheme://user:password@host.
    (
        "url_password",
        Guard::None,
        r"\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s:/@'\x22]*:(?P<s>[^\s@/'\x22]{3,})@",
    ),
    // A token as the user of a URL (`https://<key>@sentry.io/1`, `https://<token>@github.com`).
    (
        "url_token",
        Guard::None,
        r"\b[a-zA-Z][a-zA-Z0-9+.\-]*://(?P<s>[A-Za-z0-9_\-]{20,})@",
    ),
    // A quoted value assigned to a secret-like name (any case, optional type annotation):
    // `password = "..."`, `"apiKey": "..."`, `const API_TOKEN: &str = "..."`, `secret := "..."`.
    // The name must end with the secret word (`TOKEN_PATH`, `token_endpoint_auth_method` and
    // `_TOKEN_PREFIX` name something else); an interpolated template (`f"{user}:{pw}"`) is code.
    (
        "assigned_secret",
        Guard::NotTemplate,
        r#"(?i)[A-Za-z0-9_.\-]*(?:password|passwd|passphrase|pwd|secret|token|(?:api|access|auth|private|secret|signing|encryption|master|session)[_\-]?key|apikey|client[_\-]?secret|credentials?)(?:s|[0-9]+)?\b["']?(?:\s*:\s*[&'A-Za-z_][&'A-Za-z0-9_\[\]<>., ]*?)?\s*(?::=|=>|=|:)\s*(?:[rbfu]{1,2})?["'`](?P<s>[^"'`\r\n]{3,})["'`]"#,
    ),
    // An unquoted env-style value: `API_KEY=abc123`, `export DB_PASSWORD=...` (the value runs
    // to the end of the line and holds no call parentheses; a name such as `AuthScheme.BEARER`
    // or `DEFAULT_TOKEN` is code).
    (
        "assigned_secret",
        Guard::NotCode,
        r"(?m)^[ \t]*(?:export[ \t]+)?[A-Z0-9_]*(?:PASSWORD|PASSWD|SECRET|TOKEN|(?:API|ACCESS|PRIVATE|SECRET|SIGNING|ENCRYPTION|MASTER|SESSION)_?KEY|AUTH)(?:S|_?[0-9]+)?[ \t]*[=:][ \t]*(?P<s>[^\s'\x22#()]{6,})[ \t]*\r?$",
    ),
    // The same in lower case, as config files write it (`password: hunter2`, `db.password =
    // s3cret!`); the value must not look like code (no call, no member access, no spaces).
    (
        "assigned_secret",
        Guard::NotCode,
        r"(?im)^[ \t]*[a-z0-9_.\-]*(?:password|passwd|passphrase|secret|(?:api|access|private|secret|signing|encryption|master|session)[_\-]?key|client[_\-]?secret)(?:s|[0-9]+)?[ \t]*[=:][ \t]*(?P<s>[^\s'\x22`#()\[\]{}<>,;]{6,})[ \t]*\r?$",
    ),
    // A long hex/base64 blob assigned to a key-ish name, quoted or not (a long name without
    // digits, such as `OAuthAuthorizationServerProvider`, is code).
    (
        "key_blob",
        Guard::NeedsDigit,
        r#"(?i)[A-Za-z0-9_.\-]*(?:key|secret|token|salt|signature|auth|credential|passw|private|cert)[A-Za-z0-9_.\-]*["']?\s*(?::=|=>|=|:)\s*["'`]?(?P<s>[A-Za-z0-9+/_\-]{32,}={0,2})"#,
    ),
    // A line that is nothing but a long base64 run (the body of a key block cut elsewhere).
    (
        "key_blob",
        Guard::None,
        r"(?m)^[ \t]*(?P<s>[A-Za-z0-9+/]{60,}={0,2})[ \t]*\r?$",
    ),
];

/// When a pattern's match is kept after all: the checks a regex cannot express.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Guard {
    /// Always replaced.
    None,
    /// Kept when the value reads as code ([`reads_as_code`]).
    NotCode,
    /// Kept when the value is an interpolated template (`{...}`, `${...}`).
    NotTemplate,
    /// Kept when the value has no digit or reads as code.
    NeedsDigit,
}

impl Guard {
    fn keeps(self, value: &str) -> bool {
        match self {
            Guard::None => false,
            Guard::NotCode => reads_as_code(value),
            Guard::NotTemplate => value.contains('{') && value.contains('}'),
            Guard::NeedsDigit => !value.bytes().any(|b| b.is_ascii_digit()) || reads_as_code(value),
        }
    }
}

/// Whether an unquoted value reads as a name in code rather than a secret: letters, `_` and `.`
/// only, and a member access (`self.password`), a snake or screaming-snake name
/// (`DEFAULT_TOKEN`) or a CamelCase type (`ApiKey`). `abcdefabcdef` and `hunter2` do not.
fn reads_as_code(value: &str) -> bool {
    let bytes = value.as_bytes();
    if bytes.is_empty()
        || !bytes
            .iter()
            .all(|&b| b.is_ascii_alphabetic() || b == b'_' || b == b'.')
    {
        return false;
    }
    let camel = bytes[0].is_ascii_uppercase() && bytes.iter().any(u8::is_ascii_lowercase);
    camel || value.contains('.') || value.contains('_')
}

/// Kind under which [`redact_counted`] counts random-looking literals (see [`looks_random`]).
pub const HIGH_ENTROPY: &str = "high_entropy";

/// Candidates for the entropy check: a quoted literal, or a value assigned at the end of a
/// line, made only of characters keys and tokens are written in.
const ENTROPY_CANDIDATE: &str = r#"(?:["'`](?P<q>[A-Za-z0-9+/=_\-.~]{20,})["'`])|(?m:(?:=|:)[ \t]*(?P<v>[A-Za-z0-9+/=_\-.~]{20,})[ \t]*\r?$)"#;

struct Redactor {
    any: RegexSet,
    rules: Vec<(&'static str, Guard, Regex)>,
    entropy: Regex,
}

static REDACTOR: LazyLock<Redactor> = LazyLock::new(|| Redactor {
    // The patterns are constants covered by tests; failing to compile is a build-time bug.
    any: RegexSet::new(PATTERNS.iter().map(|(_, _, p)| p)).expect("redaction patterns compile"),
    rules: PATTERNS
        .iter()
        .map(|&(kind, guard, p)| {
            (
                kind,
                guard,
                Regex::new(p).expect("redaction pattern compiles"),
            )
        })
        .collect(),
    entropy: Regex::new(ENTROPY_CANDIDATE).expect("entropy candidate pattern compiles"),
});

/// Secrets found by [`redact_counted`], by kind (`aws_key`, `assigned_secret`,
/// [`HIGH_ENTROPY`], ...). Never holds the secrets themselves.
pub type SecretCounts = std::collections::BTreeMap<&'static str, usize>;

/// `text` with every secret-looking string replaced by [`REDACTED`]; borrowed when nothing
/// matched (the common case, decided in one pass over the text and one over its literals).
pub fn redact(text: &str) -> Cow<'_, str> {
    redact_counted(text, &mut SecretCounts::new())
}

/// [`redact`], adding what it replaced to `counts`: first the known formats and secret-named
/// assignments, then any remaining literal that [`looks_random`] (a key or token of a format no
/// pattern names).
pub fn redact_counted<'t>(text: &'t str, counts: &mut SecretCounts) -> Cow<'t, str> {
    let redactor = &*REDACTOR;
    let matched = redactor.any.matches(text);
    let mut out = Cow::Borrowed(text);
    for i in matched.iter() {
        let (kind, guard, rule) = &redactor.rules[i];
        let mut found = 0;
        let replaced = rule.replace_all(&out, |caps: &Captures<'_>| {
            if caps.name("s").is_some_and(|v| guard.keeps(v.as_str())) {
                return caps.get(0).map_or(String::new(), |m| m.as_str().to_owned());
            }
            let replacement = replacement(caps);
            // A match that is already redacted (idempotence) is not counted again.
            if caps.get(0).is_some_and(|m| m.as_str() != replacement) {
                found += 1;
            }
            replacement
        });
        if let Cow::Owned(new) = replaced {
            out = Cow::Owned(new);
        }
        if found > 0 {
            *counts.entry(kind).or_default() += found;
        }
    }
    let mut found = 0;
    let replaced = redactor.entropy.replace_all(&out, |caps: &Captures<'_>| {
        let whole = caps.get(0).map_or("", |m| m.as_str());
        let Some(value) = caps.name("q").or_else(|| caps.name("v")) else {
            return whole.to_owned();
        };
        if !looks_random(value.as_str()) {
            return whole.to_owned();
        }
        found += 1;
        let start = value.start() - caps.get(0).map_or(0, |m| m.start());
        format!(
            "{}{REDACTED}{}",
            &whole[..start],
            &whole[start + value.len()..]
        )
    });
    if found > 0 {
        *counts.entry(HIGH_ENTROPY).or_default() += found;
        if let Cow::Owned(new) = replaced {
            out = Cow::Owned(new);
        }
    }
    out
}

/// Whether a literal reads like a random key or token rather than a word, a path or a name:
/// at least 20 characters with letters and digits, and either hex of 32+ characters (a hex
/// key) or a base64-like mix whose Shannon entropy is near that of random text of its length
/// and whose character class (upper, lower, digit, other) changes at least every second
/// character (camelCase names and words change far less often), with digits in more than one place.
pub fn looks_random(s: &str) -> bool {
    let n = s.len();
    if n < 20 || !s.is_ascii() {
        return false;
    }
    let bytes = s.as_bytes();
    let digits = bytes.iter().filter(|b| b.is_ascii_digit()).count();
    let letters = bytes.iter().filter(|b| b.is_ascii_alphabetic()).count();
    if digits == 0 || letters == 0 {
        return false;
    }
    let mut freq = [0usize; 128];
    for &b in bytes {
        freq[usize::from(b)] += 1;
    }
    let entropy: f64 = freq
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / n as f64;
            -p * p.log2()
        })
        .sum();
    let hex = bytes.iter().all(u8::is_ascii_hexdigit);
    let one_case =
        !bytes.iter().any(u8::is_ascii_uppercase) || !bytes.iter().any(u8::is_ascii_lowercase);
    if hex && one_case {
        return n >= 32 && entropy >= 3.0;
    }
    let class = |b: &u8| match b {
        b'A'..=b'Z' => 0,
        b'a'..=b'z' => 1,
        b'0'..=b'9' => 2,
        _ => 3,
    };
    let changes = bytes
        .windows(2)
        .filter(|w| class(&w[0]) != class(&w[1]))
        .count();
    // Digits spread through the text, not a number tacked on the end of a name.
    let digit_runs = bytes
        .iter()
        .enumerate()
        .filter(|&(i, b)| b.is_ascii_digit() && (i == 0 || !bytes[i - 1].is_ascii_digit()))
        .count();
    let max_entropy = (n.min(64) as f64).log2();
    // Mostly letters, few separators (versions and dotted names are mostly punctuation).
    let others = n - digits - letters;
    entropy >= 0.8 * max_entropy
        && changes * 2 >= n
        && digits * 10 >= n
        && digit_runs >= 2
        && letters * 2 >= n
        && others * 5 <= n
}

/// Whether the file at `rel` (relative, `/`-separated) is secret-bearing by its name: `.env*`,
/// `*.pem`, `*.key`, `id_rsa*`, `credentials*`, `.npmrc`, ... (the index's built-in list). Such
/// files are skipped whole, never redacted and kept.
pub fn is_secret_file(rel: &str) -> bool {
    static FILTER: LazyLock<Option<crate::config::FileFilter>> = LazyLock::new(|| {
        crate::config::FileFilter::new(&crate::config::IndexConfig::default()).ok()
    });
    FILTER
        .as_ref()
        .is_some_and(|f| f.check_file(rel) == Some(crate::walk::SkipReason::Secret))
}

/// The match with its `s` group (or all of it) replaced.
fn replacement(caps: &Captures<'_>) -> String {
    let Some(whole) = caps.get(0) else {
        return String::new();
    };
    match caps.name("s") {
        Some(secret) => {
            let text = whole.as_str();
            let start = secret.start() - whole.start();
            let end = secret.end() - whole.start();
            format!("{}{REDACTED}{}", &text[..start], &text[end..])
        }
        None => REDACTED.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(input: &str, expected: &str) {
        assert_eq!(redact(input), expected, "input: {input}");
        // Idempotent.
        assert_eq!(redact(expected), expected, "input: {expected}");
    }

    #[test]
    fn plain_code_is_borrowed() {
        let code = "def add(a, b):\n    token_count = len(tokens)\n    return a + b\n";
        assert!(matches!(redact(code), Cow::Borrowed(_)));
        let code = "let password = read_password()?;\nif key == KEY_ENTER { submit(); }\n";
        assert!(matches!(redact(code), Cow::Borrowed(_)));
    }

    #[test]
    fn cloud_and_saas_keys() {
        check("aws_id = AKIAIOSFODNN7EXAMPLE\n", "aws_id = <redacted>\n");
        check(
            "gh = 'ghp_abcdefghijklmnopqrstuvwxyz0123456789'",
            "gh = '<redacted>'",
        );
        check(
            "pat github_pat_11ABCDEFG0123456789_abcdefghijklmnop",
            "pat <redacted>",
        );
        check("slack: xoxb-1234567890-abcdefghij", "slack: <redacted>");
        check(
            "client = OpenAI(\"sk-proj-abcdefghijklmnopqrstuvwxyz123456\")",
            "client = OpenAI(\"<redacted>\")",
        );
        check("stripe sk_live_abcdefghijklmnop1234", "stripe <redacted>");
        check(
            "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U end",
            "jwt <redacted> end",
        );
        check(
            "curl -H 'Authorization: Bearer abcdefghijklmnopqrstuvwxyz012345'",
            "curl -H 'Authorization: Bearer <redacted>'",
        );
        check(
            "DATABASE_URL = postgres://admin:s3cr3tpass@db.internal:5432/app",
            "DATABASE_URL = postgres://admin:<redacted>@db.internal:5432/app",
        );
    }

    #[test]
    fn assignments_to_secret_names() {
        check("password = \"hunter2hunter2\"", "password = \"<redacted>\"");
        check("db_password='correct horse'", "db_password='<redacted>'");
        check(
            "\"apiKey\": \"abcd1234efgh\",",
            "\"apiKey\": \"<redacted>\",",
        );
        check(
            "const API_TOKEN: &str = \"tok_live_12345\";",
            "const API_TOKEN: &str = \"<redacted>\";",
        );
        check("secret := \"shhh-value\"", "secret := \"<redacted>\"");
        check("password: str = 'pa55word'", "password: str = '<redacted>'");
        check("API_KEY=abc123def456\n", "API_KEY=<redacted>\n");
        check(
            "export GITHUB_TOKEN=abcdefabcdef\n",
            "export GITHUB_TOKEN=<redacted>\n",
        );
        check(
            "signing_key = 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n",
            "signing_key = <redacted>\n",
        );
        // Calls and comparisons are code, not secrets.
        check("TOKEN = get_token()\n", "TOKEN = get_token()\n");
        check("if password == \"\":\n", "if password == \"\":\n");
    }

    #[test]
    fn private_key_blocks() {
        let key = "key = \"\"\"\n-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7\nabc\n-----END RSA PRIVATE KEY-----\n\"\"\"\n";
        check(key, "key = \"\"\"\n<redacted>\n\"\"\"\n");
        let cut = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n";
        check(cut, "<redacted>");
        let body = "    MIIEowIBAAKCAQEAv5x0ZpYk3N8zQ1bV2c4R7s9tU0wXyZaBcDeFgHiJkLmNoPqRsTuVwXyZ12345678\n";
        check(body, "    <redacted>\n");
    }
    #[test]
    fn names_that_mention_secrets_are_code() {
        for code in [
            "token_endpoint_auth_method=\"client_secret_basic\",",
            "TOKEN_PATH = \"/token\"",
            "_TOKEN_PREFIX = \"mcp_\"",
            "credentials = f\"{client_id}:{client_secret}\"",
            "url = extract_resource_metadata_from_www_auth(response)",
            "    auth_server_provider: OAuthAuthorizationServerProvider[Any] | None = None,",
            "AUTH_SCHEME = AuthScheme.BEARER\n",
            "ACCESS_TOKEN = DEFAULT_TOKEN\n",
        ] {
            check(code, code);
        }
        check(
            "SECRET_KEY = \"django-insecure-abc123\"",
            "SECRET_KEY = \"<redacted>\"",
        );
    }

    #[test]
    fn tokens_in_urls() {
        check(
            "url = \"redis://:h7Kq2Zx9Lm4Vr8Tp@cache:6379/0\"",
            "url = \"redis://:<redacted>@cache:6379/0\"",
        );
        check(
            "dsn: https://4f9c2e7a1b8d4e6f9a3c5b7d2e1f0a8c@o1.ingest.sentry.io/2",
            "dsn: https://<redacted>@o1.ingest.sentry.io/2",
        );
        check("git@github.com:org/repo.git", "git@github.com:org/repo.git");
        check("ssh://git@host/repo", "ssh://git@host/repo");
    }

    #[test]
    fn config_values_and_code_that_names_secrets() {
        check("password: hunter2hunter\n", "password: <redacted>\n");
        check("db.password = s3cr3t!pw\n", "db.password = <redacted>\n");
        check(
            "  client_secret: 9f8e7d6c5b\n",
            "  client_secret: <redacted>\n",
        );
        // Names, member access and calls are code.
        check("password = self.password\n", "password = self.password\n");
        check(
            "secret_key = settings.SECRET_KEY\n",
            "secret_key = settings.SECRET_KEY\n",
        );
        check("    api_key: ApiKey\n", "    api_key: ApiKey\n");
        check("password = getpass()\n", "password = getpass()\n");
    }

    #[test]
    fn random_literals_by_entropy() {
        check(
            "let k = \"q8Zr4Lw2Xv9Tn6Bp3Ks7Hd1Fj5\";",
            "let k = \"<redacted>\";",
        );
        check(
            "WEBHOOK: 7fa3c9e2b1d04a8f9e6c5b3a2d1f0e9c8b7a6d5e\n",
            "WEBHOOK: <redacted>\n",
        );
        // Words, names, paths, versions and UUIDs are not random.
        for plain in [
            "msg = \"ThisIsAVeryLongCamelCaseName2024\"",
            "path = \"src/components/UserProfile.tsx\"",
            "id = \"123e4567-e89b-12d3-a456-426614174000\"",
            "url = \"https://example.com/docs/v2/index.html\"",
            "name = \"test_redaction_of_private_keys_in_configs\"",
            "version = \"1.2.3-alpha.4+build.5678\"",
        ] {
            check(plain, plain);
        }
        assert!(looks_random("AbC9dEf2GhI7jKl4MnO1pQr8"));
        assert!(!looks_random("abcdefghijklmnopqrstuvwxyz"));
    }

    #[test]
    fn counts_by_kind_without_the_secrets() {
        let mut counts = SecretCounts::new();
        let text = "aws = \"AKIAIOSFODNN7EXAMPLE\"\npassword = \"hunter2hunter2\"\nx = \"q8Zr4Lw2Xv9Tn6Bp3Ks7Hd1Fj5\"\n";
        let out = redact_counted(text, &mut counts);
        assert_eq!(counts.get("aws_key"), Some(&1));
        assert_eq!(counts.get("assigned_secret"), Some(&1));
        assert_eq!(counts.get(HIGH_ENTROPY), Some(&1));
        // Redacting the output again finds nothing new.
        let mut again = SecretCounts::new();
        assert_eq!(redact_counted(&out, &mut again), out);
        assert!(again.is_empty(), "{again:?}");
    }

    #[test]
    fn secret_files_by_name() {
        for rel in [
            ".env",
            "config/.env.production",
            "certs/server.pem",
            "id_rsa",
            "deploy/credentials.json",
            ".npmrc",
        ] {
            assert!(is_secret_file(rel), "{rel}");
        }
        for rel in ["src/env.rs", "src/keys.py", "README.md"] {
            assert!(!is_secret_file(rel), "{rel}");
        }
    }
}
