// comment
// <- comment
package main

import (
	"fmt"
	// <- string
	// <- block
)

const (
	K = 1
	// <- block
)

func main() {
	s := `raw`
	//    ^ string
	// <- block
	r := 'x'
	//    ^ string
	v := []int{1, 2}
	//         ^ block
	switch s {
	case "a":
		fmt.Println(v, r) /* inline */
		// <- block
		//                   ^ comment
	}
}
