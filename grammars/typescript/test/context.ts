// comment
// <- comment
interface Point {
  x: number;
  // <- block
}
const p: { x: number } = { x: 1 };
//         ^ block
//                         ^ block
const s = `sum ${p.x}`;
//         ^ string
//               ^ block
enum E {
  A = "a",
  // <- block
  //   ^ string
}
