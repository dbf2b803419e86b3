export interface Shape {
//               ^ definition.interface
  area(): number;
  // <- definition.method
}

type Id = string | number;
//   ^ definition.type

enum Color {
//   ^ definition.type
  Red,
}

namespace Geometry {
//        ^ definition.module
  export const PI = 3.14;
}

declare function parse(input: string): Shape;
//               ^ definition.function

abstract class Base implements Shape {
//             ^ definition.class
//                             ^ reference.implementation
  abstract area(): number;
  //       ^ definition.method
}

class Circle extends Base {
//    ^ definition.class
  constructor(private r: number) {
    super();
  }
  area(): number {
  // <- definition.method
    return Math.max(this.r, 0);
    //          ^ reference.call
  }
}

const make = (r: number): Circle => new Circle(r);
//    ^ definition.function
//                                      ^ reference.class
//                        ^ reference.type

export const ORIGIN = { x: 0 };
//           ^ definition.constant
