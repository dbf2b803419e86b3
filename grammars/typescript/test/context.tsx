// comment
// <- comment
const view = (name: string) => <b title="t">{name}</b>;
//                                      ^ string
const s = "text";
//         ^ string
function f() {
  return [1, 2];
  // <- block
  //      ^ block
}
