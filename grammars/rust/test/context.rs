/// A doc comment
// <- comment
fn main() {
// ^ !block
//        ^ block
    let s = "text { not a block }";
    //       ^ string
    let r = r#"raw"#;
    //         ^ string
    let c = '\'';
    //      ^ string
    /* block
    comment */
    // <- comment
    let v = vec![1, 2, 3];
    //          ^ block
    match c {
        _ => {}
        // <- block
    }
}

struct S {
    a: u8,
    // <- block
}
