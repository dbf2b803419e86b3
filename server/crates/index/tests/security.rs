//! Security of the index (issue 16): nothing outside the workspace root is ever read, whether a
//! caller names it (`..`, percent-decoded URIs, absolute paths elsewhere) or a symlink leads to
//! it (a file symlink, a symlinked directory); a symlink may not launder a secret file's name;
//! planted secrets never leave the index in a snippet or a symbol.

use std::os::unix::fs::symlink;
use std::path::Path;

use moat_index::{Error, FileStatus, Index, IndexConfig, Query, SkipReason};
use tempfile::TempDir;

const OUTSIDE_MARK: &str = "outside_only_identifier_zqx";

fn write(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

/// A workspace, a folder next to it with a "private" file, and symlinks from one to the other.
struct Fixture {
    _tmp: TempDir,
    root: std::path::PathBuf,
    outside: std::path::PathBuf,
    cache: std::path::PathBuf,
}

fn fixture() -> Fixture {
    let tmp = TempDir::new().expect("tempdir");
    let root = tmp.path().join("ws");
    let outside = tmp.path().join("private");
    let cache = tmp.path().join("cache");
    write(
        &root,
        "src/app.py",
        "def handler(request):\n    return request\n",
    );
    write(
        &outside,
        "notes.py",
        &format!("def {OUTSIDE_MARK}():\n    key = 'private'\n"),
    );
    write(
        &root,
        ".env",
        "API_TOKEN=ghp_abcdefghijklmnopqrstuvwxyz0123456789\n",
    );
    // A file symlink out of the root, a directory symlink out of it, and a symlink that gives
    // a secret file an innocent name.
    symlink(outside.join("notes.py"), root.join("src/helpers.py")).expect("symlink");
    symlink(&outside, root.join("vendored")).expect("symlink");
    symlink(root.join(".env"), root.join("src/settings.py")).expect("symlink");
    // A symlink inside the root stays allowed.
    symlink(root.join("src/app.py"), root.join("src/app_alias.py")).expect("symlink");
    Fixture {
        _tmp: tmp,
        root,
        outside,
        cache,
    }
}

fn open(f: &Fixture) -> Index {
    let index = Index::open(&f.root, &f.cache, IndexConfig::default()).expect("open");
    index.refresh(&mut |_| {}).expect("refresh");
    index
}

fn everything(index: &Index) -> String {
    let idents = vec![OUTSIDE_MARK.to_string(), "handler".to_string()];
    let snippets = index.retrieve(&Query {
        path: "src/other.py",
        text_before_cursor: &format!("{OUTSIDE_MARK}()\nhandler(request)\nAPI_TOKEN\n"),
        identifiers_near_cursor: &idents,
        budget_bytes: 1 << 20,
        ..Query::default()
    });
    let mut all: Vec<String> = snippets
        .iter()
        .map(|s| format!("{}: {}", s.path, s.text))
        .collect();
    for symbol in index.workspace_symbols("", 1000) {
        all.push(format!("{symbol:?}"));
    }
    all.join("\n")
}

#[test]
fn symlinks_out_of_the_root_are_never_read() {
    let f = fixture();
    let index = open(&f);
    let seen = everything(&index);
    assert!(seen.contains("handler"), "the workspace is indexed: {seen}");
    assert!(!seen.contains(OUTSIDE_MARK), "{seen}");
    assert!(!seen.contains("ghp_"), "{seen}");
    // The symlink into the root is still indexed.
    assert!(
        seen.contains("app_alias.py") || seen.contains("app.py"),
        "{seen}"
    );
}

#[test]
fn updates_naming_paths_outside_the_root_are_refused() {
    let f = fixture();
    let index = open(&f);
    // Absolute paths elsewhere and `..` escapes are errors.
    for path in [
        f.outside.join("notes.py"),
        f.root.join("../private/notes.py"),
        f.root.join("src/../../private/notes.py"),
        Path::new("../private/notes.py").to_path_buf(),
        Path::new("/etc/passwd").to_path_buf(),
    ] {
        match index.update_file(&path) {
            Err(Error::OutsideRoot(_)) => {}
            other => panic!("{}: {other:?}", path.display()),
        }
    }
    // Paths inside the root that resolve outside it (through a symlinked directory or a file
    // symlink) are skipped, not read.
    for path in [
        f.root.join("vendored/notes.py"),
        f.root.join("src/helpers.py"),
    ] {
        let status = index.update_file(&path).expect("update");
        assert_eq!(
            status,
            FileStatus::Skipped(SkipReason::Special),
            "{}",
            path.display()
        );
    }
    // A symlink that renames a secret file is a secret.
    assert_eq!(
        index
            .update_file(&f.root.join("src/settings.py"))
            .expect("update"),
        FileStatus::Skipped(SkipReason::Secret)
    );
    let seen = everything(&index);
    assert!(!seen.contains(OUTSIDE_MARK), "{seen}");
    assert!(!seen.contains("ghp_"), "{seen}");
}

/// A symlink swapped to point outside after the first index is dropped on the next refresh.
#[test]
fn a_symlink_retargeted_outside_is_dropped() {
    let f = fixture();
    let link = f.root.join("src/moving.py");
    write(&f.root, "src/target.py", "def inside_target():\n    pass\n");
    symlink(f.root.join("src/target.py"), &link).expect("symlink");
    let index = open(&f);
    assert!(everything(&index).contains("inside_target"));
    std::fs::remove_file(&link).expect("rm");
    symlink(f.outside.join("notes.py"), &link).expect("symlink");
    let status = index.update_file(&link).expect("update");
    assert_eq!(status, FileStatus::Skipped(SkipReason::Special));
    assert!(!everything(&index).contains(OUTSIDE_MARK));
}
