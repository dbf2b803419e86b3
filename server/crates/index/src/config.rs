//! What gets indexed: the `[index]` table of `.moat.toml` and the path filter compiled from it.
//!
//! Owns: [`IndexConfig`] (include/exclude globs, size limit, secret-file globs), the built-in
//! lists of secret-bearing and noise files, and [`FileFilter`], the one place that says
//! whether a workspace-relative path is indexed.
//! Must not: touch file contents (binary detection and size checks live in `walk`).
//!
//! Glob syntax (gitignore-like): globs match the path relative to the workspace root with `/`
//! separators; `*` does not cross `/`, `**` does; a glob without `/` matches a file or directory
//! name at any depth (`*.pem` skips `a/b/c.pem`); a glob ending in `/` matches a directory and
//! everything under it.

use std::path::Path;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use serde::{Deserialize, Serialize};

use crate::walk::SkipReason;
use crate::{Error, Result};

/// Secret-bearing files skipped unless `skip_secret_files = false`.
pub const DEFAULT_SECRET_GLOBS: &[&str] = &[
    ".env",
    ".env*",
    "*.pem",
    "*.key",
    "id_rsa*",
    "id_dsa*",
    "id_ecdsa*",
    "id_ed25519*",
    "*.p12",
    "*.pfx",
    "*.jks",
    "*.keystore",
    "credentials*",
    ".git-credentials",
    ".npmrc",
    ".pypirc",
    ".netrc",
    ".htpasswd",
    "*.tfvars",
    "*.tfstate",
    "*.tfstate.*",
];

/// Generated or data files that only add noise to retrieval; always excluded.
pub const DEFAULT_EXCLUDES: &[&str] = &[
    ".git/",
    ".moat/",
    "node_modules/",
    "Cargo.lock",
    "package-lock.json",
    "yarn.lock",
    "pnpm-lock.yaml",
    "poetry.lock",
    "uv.lock",
    "Pipfile.lock",
    "go.sum",
    "*.min.js",
    "*.min.css",
    "*.map",
];

/// The `[index]` table of `.moat.toml`. Unknown keys are ignored (other tools may add theirs).
///
/// ```toml
/// [index]
/// include = ["src/**", "lib/**"]      # only these (default: everything)
/// exclude = ["vendor/", "*.gen.go"]   # never these (added to the built-in noise list)
/// max_file_bytes = 1_000_000          # larger files are skipped without being read
/// skip_secret_files = true            # .env*, *.pem, *.key, id_rsa*, credentials*, ...
/// extra_secret_globs = ["secrets/"]   # more files to treat as secret-bearing
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct IndexConfig {
    /// When non-empty, only files matching one of these globs are indexed.
    pub include: Vec<String>,
    /// Files (and directories) matching one of these globs are not indexed.
    pub exclude: Vec<String>,
    /// Files larger than this are skipped (their size is read from metadata; they are never
    /// opened).
    pub max_file_bytes: u64,
    /// Skip the secret-bearing files of [`DEFAULT_SECRET_GLOBS`] and `extra_secret_globs`.
    pub skip_secret_files: bool,
    /// Globs of more secret-bearing files.
    pub extra_secret_globs: Vec<String>,
    /// Threads that read and parse files during a refresh; 0 = the number of cores (at most 4).
    pub threads: usize,
}

impl Default for IndexConfig {
    fn default() -> IndexConfig {
        IndexConfig {
            include: Vec::new(),
            exclude: Vec::new(),
            max_file_bytes: 1_000_000,
            skip_secret_files: true,
            extra_secret_globs: Vec::new(),
            threads: 0,
        }
    }
}

#[derive(Deserialize)]
struct MoatToml {
    #[serde(default)]
    index: Option<IndexConfig>,
}

impl IndexConfig {
    /// The `[index]` table of a `.moat.toml` text (defaults when absent).
    pub fn from_toml(text: &str) -> Result<IndexConfig> {
        let parsed: MoatToml = toml::from_str(text).map_err(|e| Error::Config {
            path: ".moat.toml".into(),
            message: e.to_string(),
        })?;
        let config = parsed.index.unwrap_or_default();
        // Compile once to report bad globs now rather than at the first walk.
        FileFilter::new(&config)?;
        Ok(config)
    }

    /// The configuration in `<root>/.moat.toml`, or the defaults when there is none.
    pub fn load(root: &Path) -> Result<IndexConfig> {
        let path = root.join(".moat.toml");
        match std::fs::read_to_string(&path) {
            Ok(text) => IndexConfig::from_toml(&text).map_err(|e| match e {
                Error::Config { message, .. } => Error::Config {
                    path: path.display().to_string(),
                    message,
                },
                other => other,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(IndexConfig::default()),
            Err(e) => Err(Error::io(format!("reading {}", path.display()), e)),
        }
    }
}

/// The compiled path filter of an [`IndexConfig`].
#[derive(Debug)]
pub(crate) struct FileFilter {
    include: Option<GlobSet>,
    exclude: GlobSet,
    secret: Option<GlobSet>,
}

/// Compiles gitignore-like globs (see the module docs) into one set.
fn glob_set(patterns: &[impl AsRef<str>]) -> Result<GlobSet> {
    let mut builder = GlobSetBuilder::new();
    for pattern in patterns {
        let pattern = pattern.as_ref().trim();
        if pattern.is_empty() {
            continue;
        }
        // A trailing `/` only documents intent: a matching name is pruned as a directory
        // and everything under it is excluded either way.
        let body = pattern.trim_end_matches('/');
        let body = body.strip_prefix('/').unwrap_or(body);
        let base = if body.contains('/') {
            body.to_owned()
        } else {
            format!("**/{body}")
        };
        // Everything under a matching directory matches too.
        let variants = [format!("{base}/**"), base];
        for variant in variants {
            let glob = GlobBuilder::new(&variant)
                .literal_separator(true)
                .backslash_escape(true)
                .build()
                .map_err(|e| Error::Config {
                    path: ".moat.toml".into(),
                    message: format!("bad glob {pattern:?}: {e}"),
                })?;
            builder.add(glob);
        }
    }
    builder.build().map_err(|e| Error::Config {
        path: ".moat.toml".into(),
        message: e.to_string(),
    })
}

impl FileFilter {
    pub(crate) fn new(config: &IndexConfig) -> Result<FileFilter> {
        let include = if config.include.is_empty() {
            None
        } else {
            Some(glob_set(&config.include)?)
        };
        let mut exclude: Vec<&str> = DEFAULT_EXCLUDES.to_vec();
        exclude.extend(config.exclude.iter().map(String::as_str));
        let secret = if config.skip_secret_files {
            let mut globs: Vec<&str> = DEFAULT_SECRET_GLOBS.to_vec();
            globs.extend(config.extra_secret_globs.iter().map(String::as_str));
            Some(glob_set(&globs)?)
        } else {
            None
        };
        Ok(FileFilter {
            include,
            exclude: glob_set(&exclude)?,
            secret,
        })
    }

    /// Why the file at `rel` (relative, `/`-separated) is not indexed, or `None` when it is.
    pub(crate) fn check_file(&self, rel: &str) -> Option<SkipReason> {
        if self.exclude.is_match(rel) {
            return Some(SkipReason::Excluded);
        }
        if let Some(include) = &self.include
            && !include.is_match(rel)
        {
            return Some(SkipReason::Excluded);
        }
        if let Some(secret) = &self.secret
            && secret.is_match(rel)
        {
            return Some(SkipReason::Secret);
        }
        None
    }

    /// Whether the directory at `rel` is pruned from the walk (everything under it excluded).
    pub(crate) fn prune_dir(&self, rel: &str) -> bool {
        self.exclude.is_match(rel)
            || self
                .secret
                .as_ref()
                .is_some_and(|secret| secret.is_match(rel))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(toml: &str) -> FileFilter {
        FileFilter::new(&IndexConfig::from_toml(toml).unwrap()).unwrap()
    }

    #[test]
    fn defaults_skip_secrets_and_noise() {
        let f = filter("");
        for secret in [
            ".env",
            ".env.local",
            "deploy/server.pem",
            "a/b/id_rsa",
            "id_ed25519.pub",
            "credentials.json",
            ".npmrc",
            "infra/prod.tfvars",
        ] {
            assert_eq!(f.check_file(secret), Some(SkipReason::Secret), "{secret}");
        }
        for noise in ["Cargo.lock", "web/node_modules/x/index.js", "app.min.js"] {
            assert_eq!(f.check_file(noise), Some(SkipReason::Excluded), "{noise}");
        }
        for ok in ["src/main.rs", "environment.py", "keys.py", "docs/readme.md"] {
            assert_eq!(f.check_file(ok), None, "{ok}");
        }
        assert!(f.prune_dir("node_modules"));
        assert!(f.prune_dir("a/.git"));
        assert!(!f.prune_dir("src"));
    }

    #[test]
    fn include_exclude_and_secret_options() {
        let f = filter(
            "[other]\nx = 1\n[index]\ninclude = [\"src/**\"]\nexclude = [\"*.gen.rs\", \"src/vendor/\"]\n\
             skip_secret_files = false\nextra_secret_globs = [\"*.secret\"]\nmax_file_bytes = 10\n",
        );
        assert_eq!(f.check_file("src/a.rs"), None);
        assert_eq!(f.check_file("lib/a.rs"), Some(SkipReason::Excluded));
        assert_eq!(f.check_file("src/x/a.gen.rs"), Some(SkipReason::Excluded));
        assert_eq!(f.check_file("src/vendor/a.rs"), Some(SkipReason::Excluded));
        assert!(f.prune_dir("src/vendor"));
        assert_eq!(f.check_file("src/.env"), None);

        let f = filter("[index]\nextra_secret_globs = [\"*.secret\", \"vault/\"]\n");
        assert_eq!(f.check_file("a/b.secret"), Some(SkipReason::Secret));
        assert_eq!(f.check_file("vault/x.py"), Some(SkipReason::Secret));
    }

    #[test]
    fn bad_config_is_an_error() {
        assert!(IndexConfig::from_toml("[index]\nexclude = [\"a[\"]\n").is_err());
        assert!(IndexConfig::from_toml("[index]\nmax_file_bytes = \"big\"\n").is_err());
        let c = IndexConfig::from_toml("[index]\nmax_file_bytes = 1_000\n").unwrap();
        assert_eq!(c.max_file_bytes, 1000);
        assert!(c.skip_secret_files);
    }
}
