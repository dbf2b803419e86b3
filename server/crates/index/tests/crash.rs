//! Crash safety of the index (issue 16): a child process indexes a workspace and then updates
//! files one by one, logging each update once `update_file` returned; it is killed with SIGKILL
//! at a random moment, many times over the same cache dir. After every kill the index must
//! open (nothing corrupt: a damaged store is detected and rebuilt, never served), must still
//! hold the last update the child reported done (at most the update in flight is lost), and
//! after a refresh must agree with the files on disk.
//!
//! Quick run (CI): `cargo test -p moat-index --test crash` (12 kills).
//! Long run: `MOAT_CRASH_ITERS=300 cargo test --release -p moat-index --test crash --
//! --nocapture` (prints kills, intact reopens and rebuilds).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use moat_index::{Index, IndexConfig};
use tempfile::TempDir;

const STATIC_FILES: usize = 300;
const MOVING_FILES: u64 = 7;

fn write(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

fn moving(k: u64) -> String {
    format!("live/f{}.py", k % MOVING_FILES)
}

/// The child: index, then update forever. Runs only when the parent starts it.
#[test]
#[ignore = "the crashing child of `kill_9_at_random_points`; started by it"]
fn crash_child() {
    let (Ok(root), Ok(cache), Ok(log)) = (
        std::env::var("MOAT_CRASH_ROOT"),
        std::env::var("MOAT_CRASH_CACHE"),
        std::env::var("MOAT_CRASH_LOG"),
    ) else {
        return;
    };
    let root = PathBuf::from(root);
    let start: u64 = std::env::var("MOAT_CRASH_START")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("log");
    let index = Index::open(&root, Path::new(&cache), IndexConfig::default()).expect("open");
    index.refresh(&mut |_| {}).expect("refresh");
    writeln!(log, "refreshed").expect("log");
    for k in start.. {
        let rel = moving(k);
        write(
            &root,
            &rel,
            &format!("def version_{k}(value):\n    return value + {k}\n"),
        );
        index.update_file(&root.join(&rel)).expect("update");
        // Logged only once the update is committed: the parent may rely on it.
        writeln!(log, "u {k}").expect("log");
    }
}

/// xorshift: the kill times.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn symbol_exists(index: &Index, name: &str) -> bool {
    index
        .workspace_symbols(name, 5)
        .iter()
        .any(|s| s.name == name)
}

#[test]
fn kill_9_at_random_points() {
    let iterations: u64 = std::env::var("MOAT_CRASH_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12);
    let tmp = TempDir::new().expect("tempdir");
    let root = tmp.path().join("ws");
    let cache = tmp.path().join("cache");
    for i in 0..STATIC_FILES {
        let mut text = String::new();
        for j in 0..20 {
            text.push_str(&format!(
                "def static_{i}_{j}(a, b):\n    total = a * {j} + b\n    return total\n\n"
            ));
        }
        write(&root, &format!("pkg{}/m{i}.py", i % 10), &text);
    }
    let log = tmp.path().join("progress.log");
    let exe = std::env::current_exe().expect("test binary");
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    // `empty`: reopened with nothing persisted (killed before the first commit, or a damaged
    // store detected and rebuilt).
    let (mut intact, mut empty, mut updates_done) = (0, 0, 0u64);
    let mut next_k = 0u64;
    let started = Instant::now();
    for iteration in 0..iterations {
        let _ = std::fs::remove_file(&log);
        let mut child = Command::new(&exe)
            .args(["crash_child", "--exact", "--ignored", "--nocapture"])
            .env("MOAT_CRASH_ROOT", &root)
            .env("MOAT_CRASH_CACHE", &cache)
            .env("MOAT_CRASH_LOG", &log)
            .env("MOAT_CRASH_START", next_k.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the child");
        // Some kills land in the first full index, most among the updates.
        let wait = match iteration % 4 {
            0 => 20 + rng.below(400),
            _ => 200 + rng.below(1500),
        };
        std::thread::sleep(Duration::from_millis(wait));
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");

        let progress = std::fs::read_to_string(&log).unwrap_or_default();
        let last_done = progress
            .lines()
            .filter_map(|l| l.strip_prefix("u "))
            .filter_map(|k| k.parse::<u64>().ok())
            .next_back();
        let index = Index::open(&root, &cache, IndexConfig::default())
            .unwrap_or_else(|e| panic!("iteration {iteration}: the index does not open: {e}"));
        assert!(!index.stats().read_only, "the dead child's lock is gone");
        if index.stats().files == 0 {
            empty += 1;
        } else {
            intact += 1;
            if let Some(k) = last_done {
                assert!(
                    symbol_exists(&index, &format!("version_{k}")),
                    "iteration {iteration}: update {k} was reported done but is lost"
                );
            }
        }
        if let Some(k) = last_done {
            updates_done += k + 1 - next_k;
            next_k = k + 1;
        }
        // Caught up with the disk, the index agrees with every file.
        index.refresh(&mut |_| {}).expect("refresh after a crash");
        let live = std::fs::read_dir(root.join("live")).map_or(0, |d| d.count());
        assert_eq!(
            index.stats().files,
            STATIC_FILES + live,
            "iteration {iteration}"
        );
        assert!(symbol_exists(&index, "static_17_3"));
        for f in 0..MOVING_FILES {
            let Ok(text) = std::fs::read_to_string(root.join(format!("live/f{f}.py"))) else {
                continue;
            };
            if let Some(name) = text
                .strip_prefix("def ")
                .and_then(|t| t.split('(').next())
                .filter(|_| text.ends_with('\n'))
            {
                assert!(
                    symbol_exists(&index, name),
                    "iteration {iteration}: {name} on disk, not in the index"
                );
            }
        }
    }
    let leftovers: Vec<String> = walk_files(&cache)
        .into_iter()
        .filter(|p| p.ends_with(".tmp"))
        .collect();
    eprintln!(
        "crash test: {iterations} kills, {updates_done} updates committed, reopened intact \
         {intact}, empty {empty}, 0 corrupt, {} temporary files left, {:.1} s",
        leftovers.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(leftovers.len() <= 2, "{leftovers:?}");
}

fn walk_files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk_files(&path));
        } else {
            out.push(path.display().to_string());
        }
    }
    out
}
