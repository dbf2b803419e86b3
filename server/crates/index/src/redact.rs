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

/// Patterns, in the order they are applied. A pattern with a group named `s` replaces only
/// that group; one without replaces its whole match.
const PATTERNS: &[&str] = &[
    // PEM / OpenSSH / PGP private key blocks (an unterminated block runs to the end).
    r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY[A-Z ]*-----(?s:.*?)(?:-----END[A-Z0-9 ]*PRIVATE KEY[A-Z ]*-----|\z)",
    // AWS access key ids.
    r"\b(?P<s>(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|ABIA|ACCA)[0-9A-Z]{16})\b",
    // GitHub tokens.
    r"\b(?P<s>(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{20,})",
    // GitLab personal tokens.
    r"\b(?P<s>glpat-[A-Za-z0-9_\-]{20,})",
    // Slack tokens and webhooks.
    r"\b(?P<s>xox[abposre]-[A-Za-z0-9\-]{10,})",
    r"hooks\.slack\.com/services/(?P<s>[A-Za-z0-9/]{16,})",
    // OpenAI / Anthropic style keys, Stripe keys.
    r"\b(?P<s>sk-(?:proj-|ant-|live-|test-)?[A-Za-z0-9_\-]{20,})",
    r"\b(?P<s>[rsp]k_(?:live|test)_[A-Za-z0-9]{16,})",
    // Google API keys.
    r"\b(?P<s>AIza[0-9A-Za-z_\-]{35})",
    // JWT-like base64url JSON.
    r"\b(?P<s>eyJ[A-Za-z0-9_\-]{16,}(?:\.[A-Za-z0-9_\-]*){0,2})",
    // Bearer tokens in headers.
    r"(?i)\bbearer\s+(?P<s>[A-Za-z0-9._~+/\-]{20,}=*)",
    // Passwords in URLs: scheme://user:password@host.
    r"\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s:/@'\x22]+:(?P<s>[^\s@/'\x22]{3,})@",
    // A quoted value assigned to a secret-like name (any case, optional type annotation):
    // `password = "..."`, `"apiKey": "..."`, `const API_TOKEN: &str = "..."`, `secret := "..."`.
    r#"(?i)[A-Za-z0-9_.\-]*(?:password|passwd|passphrase|pwd|secret|token|api[_\-]?key|apikey|access[_\-]?key|auth[_\-]?key|private[_\-]?key|client[_\-]?secret|credentials?)[A-Za-z0-9_.\-]*["']?(?:\s*:\s*[&'A-Za-z_][&'A-Za-z0-9_\[\]<>., ]*?)?\s*(?::=|=>|=|:)\s*(?:[rbfu]{1,2})?["'`](?P<s>[^"'`\r\n]{3,})["'`]"#,
    // An unquoted env-style value: `API_KEY=abc123`, `export DB_PASSWORD=...` (the value runs
    // to the end of the line and holds no call parentheses).
    r"(?m)^[ \t]*(?:export[ \t]+)?[A-Z0-9_]*(?:PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|AUTH)[A-Z0-9_]*[ \t]*[=:][ \t]*(?P<s>[^\s'\x22#()]{6,})[ \t]*\r?$",
    // A long hex/base64 blob assigned to a key-ish name, quoted or not.
    r#"(?i)[A-Za-z0-9_.\-]*(?:key|secret|token|salt|signature|auth|credential|passw|private|cert)[A-Za-z0-9_.\-]*["']?\s*(?::=|=>|=|:)\s*["'`]?(?P<s>[A-Za-z0-9+/_\-]{32,}={0,2})"#,
    // A line that is nothing but a long base64 run (the body of a key block cut elsewhere).
    r"(?m)^[ \t]*(?P<s>[A-Za-z0-9+/]{60,}={0,2})[ \t]*\r?$",
];

struct Redactor {
    any: RegexSet,
    rules: Vec<Regex>,
}

static REDACTOR: LazyLock<Redactor> = LazyLock::new(|| Redactor {
    // The patterns are constants covered by tests; failing to compile is a build-time bug.
    any: RegexSet::new(PATTERNS).expect("redaction patterns compile"),
    rules: PATTERNS
        .iter()
        .map(|p| Regex::new(p).expect("redaction pattern compiles"))
        .collect(),
});

/// `text` with every secret-looking string replaced by [`REDACTED`]; borrowed when nothing
/// matched (the common case, decided in one pass over the text).
pub fn redact(text: &str) -> Cow<'_, str> {
    let redactor = &*REDACTOR;
    let matched = redactor.any.matches(text);
    if !matched.matched_any() {
        return Cow::Borrowed(text);
    }
    let mut out = Cow::Borrowed(text);
    for i in matched.iter() {
        let rule = &redactor.rules[i];
        let replaced = rule.replace_all(&out, |caps: &Captures<'_>| replacement(caps));
        if let Cow::Owned(new) = replaced {
            out = Cow::Owned(new);
        }
    }
    out
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
}
