//! Prints what moat-syntax sees in a file: the syntax tree (named nodes with byte ranges and
//! field names), the definitions from `tags.scm` and the statement boundaries. A tool for
//! writing query files: `cargo run -p moat-syntax --example dump -- FILE [BYTE]`; with BYTE it
//! also prints the cursor info there.

use std::path::Path;

use moat_syntax::{Language, SyntaxTree};

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: dump FILE [BYTE]");
        std::process::exit(2);
    };
    let byte: Option<usize> = args.next().and_then(|b| b.parse().ok());
    let src = match std::fs::read_to_string(&path) {
        Ok(src) => src,
        Err(err) => {
            eprintln!("{path}: {err}");
            std::process::exit(1);
        }
    };
    let Some(lang) = Language::from_path(Path::new(&path)) else {
        eprintln!("{path}: unknown language");
        std::process::exit(1);
    };
    let Some(tree) = SyntaxTree::parse(lang, &src) else {
        eprintln!("{path}: not parsed (too large or timed out)");
        std::process::exit(1);
    };

    println!("# tree ({lang})");
    let mut cursor = tree.tree().walk();
    let mut depth = 0usize;
    loop {
        let node = cursor.node();
        if node.is_named() || node.is_missing() {
            let field = cursor
                .field_name()
                .map(|f| format!("{f}: "))
                .unwrap_or_default();
            let missing = if node.is_missing() { "MISSING " } else { "" };
            println!(
                "{:indent$}{field}{missing}{} {:?}",
                "",
                node.kind(),
                node.byte_range(),
                indent = depth * 2
            );
        }
        if cursor.goto_first_child() {
            depth += 1;
            continue;
        }
        while !cursor.goto_next_sibling() {
            if !cursor.goto_parent() {
                depth = usize::MAX;
                break;
            }
            depth -= 1;
        }
        if depth == usize::MAX {
            break;
        }
    }

    println!("\n# definitions");
    for d in tree.definitions(&src) {
        println!("{} {} {:?}: {}", d.kind, d.name, d.range, d.signature);
    }
    println!("\n# boundaries");
    println!("{:?}", tree.boundaries(&src, 0..src.len()));
    if let Some(byte) = byte {
        println!("\n# cursor at {byte}");
        println!("{:?}", tree.cursor_info(&src, byte));
    }
}
