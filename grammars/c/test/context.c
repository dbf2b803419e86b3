#include <stdio.h>
//        ^ string
// comment
// <- comment
struct s {
    int a;
    // <- block
};
int xs[] = {1, 2};
//          ^ block
int main(void) {
    char *t = "text"; /* block */
    // <- block
    //         ^ string
    //                   ^ comment
    switch (xs[0]) {
    case 1:
        return 'c';
        // <- block
        //      ^ string
    }
}
