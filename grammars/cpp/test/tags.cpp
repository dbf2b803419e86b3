#include <vector>

#define LIMIT 8
//      ^ definition.constant

namespace geo {
//        ^ definition.module

class Shape {
//    ^ definition.class
public:
    virtual ~Shape();
    //       ^ definition.method
    virtual double area() const = 0;
    //             ^ definition.method
    int sides() const { return 0; }
    //  ^ definition.method
};

struct Point {
//     ^ definition.class
    int x;
};

enum class Color { Red };
//         ^ definition.type

using Points = std::vector<Point>;
//    ^ definition.type

double Shape::area() const {
//            ^ definition.method
//            ^ !definition.function
    return 0;
}

int count(const Points &ps) {
//  ^ definition.function
    auto *s = new Point();
    //            ^ reference.class
    return static_cast<int>(ps.size()) + helper(1) + std::abs(-1);
    //                         ^ reference.call
    //                                   ^ reference.call
    //                                                    ^ reference.call
}

}  // namespace geo
