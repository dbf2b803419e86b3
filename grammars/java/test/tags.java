package shapes;

public class Circle extends Shape implements Drawable {
//           ^ definition.class
//                          ^ reference.class
//                                           ^ reference.implementation
    public static final double PI = 3.14;
    //                         ^ definition.constant
    private final int radius;
    //                ^ !definition.constant

    public Circle(int radius) {
    //     ^ definition.method
        this.radius = radius;
    }

    @Override
    public double area() {
    //            ^ definition.method
        return Math.pow(radius, 2) * PI;
        //          ^ reference.call
    }
}

interface Drawable {
//        ^ definition.interface
    int SIDES = 0;
    //  ^ definition.constant
    void draw();
    //   ^ definition.method
}

enum Color {
//   ^ definition.class
    RED,
    // <- definition.constant
}

record Pair(int a, int b) {
//     ^ definition.class
    Pair make() {
        return new Pair(1, 2);
        //         ^ reference.class
    }
}
