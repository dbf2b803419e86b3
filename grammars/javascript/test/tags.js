import { readFile } from "fs";

const LIMIT = 10;
//    ^ definition.constant
export const NAME = "moat";
//           ^ definition.constant

function load(path) {
//       ^ definition.function
  return readFile(path);
  //     ^ reference.call
}

function* ids() {
//        ^ definition.function
  yield 1;
}

const double = (x) => x * 2;
//    ^ definition.function
//    ^ !definition.constant

class Store extends Base {
//    ^ definition.class
  constructor() {
  // <- definition.method
    super();
    this.items = new Map();
    //               ^ reference.class
  }

  add(item) {
  // <- definition.method
    this.items.set(item.id, item);
    //         ^ reference.call
  }
}

const handlers = {
  onClick: function () {},
  // <- definition.function
};

module.exports.run = () => load("x");
//             ^ definition.function
//                         ^ reference.call
const fs = require("fs");
//         ^ !reference.call
