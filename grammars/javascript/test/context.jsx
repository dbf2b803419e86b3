// line comment
// <- comment
/* block comment */
// ^ comment
const s = "string";
//         ^ string
const t = `template ${s + "x"} end`;
//         ^ string
//                    ^ block
const r = /ab+c/g;
//         ^ string

function f() {
// <- !block
  const o = { a: [1, 2] };
  // <- block
  //          ^ block
  //              ^ block
  return <div className="x">{o.a}</div>;
  //                         ^ block
}
