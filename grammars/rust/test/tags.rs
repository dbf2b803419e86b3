mod geometry {
//  ^ definition.module
    pub const ORIGIN: (i32, i32) = (0, 0);
    //        ^ definition.constant
}

static COUNT: usize = 0;
//     ^ definition.constant

pub struct Point {
//         ^ definition.class
    x: i32,
}

enum Shape {
//   ^ definition.class
    Circle,
}

type Meters = f64;
//   ^ definition.type

pub trait Area {
//        ^ definition.interface
    fn area(&self) -> f64;
    // ^ definition.method
    fn unit(&self) -> &str {
    // ^ definition.method
        "m2"
    }
}

impl Area for Point {
//   ^ reference.implementation
    fn area(&self) -> f64 {
    // ^ definition.method
    // ^ !definition.function
        helper(self.x)
        // <- reference.call
    }
}

fn helper(x: i32) -> f64 {
// ^ definition.function
    let p = Point { x };
    //      ^ reference.class
    p.x.abs();
    //  ^ reference.call
    println!("{}", x);
    // <- reference.call
    f64::from(x)
    //   ^ reference.call
}

macro_rules! square {
//           ^ definition.macro
    ($x:expr) => {
        $x * $x
    };
}
