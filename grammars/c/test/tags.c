#include <stdio.h>

#define MAX 10
//      ^ definition.constant
#define SQUARE(x) ((x) * (x))
//      ^ definition.macro

struct point {
//     ^ definition.class
    int x;
};

typedef struct point point_t;
//                   ^ definition.type

enum color { RED, GREEN };
//   ^ definition.type
//           ^ definition.constant

int area(int w, int h);
//  ^ definition.function

static char *name(void) {
//           ^ definition.function
    return "x";
}

int main(void) {
//  ^ definition.function
    printf("%d\n", area(1, 2));
    // <- reference.call
    //             ^ reference.call
    return 0;
}
