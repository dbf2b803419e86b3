package shapes

import "math"

const Pi = 3.14
//    ^ definition.constant

const (
	A = iota
	// <- definition.constant
	B
)

type Point struct {
//   ^ definition.class
	X, Y float64
}

type Shape interface {
//   ^ definition.interface
	Area() float64
	// <- definition.method
}

type Meters float64
//   ^ definition.type

type Alias = Point
//   ^ definition.type

func New(x float64) Point {
//   ^ definition.function
	return Point{X: math.Abs(x)}
	//     ^ reference.class
	//                   ^ reference.call
}

func (p Point) Dist() float64 {
//             ^ definition.method
	return helper(p.X)
	//     ^ reference.call
}
