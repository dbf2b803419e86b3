// line comment
// <- comment
/** doc */
//  ^ comment
class A {
    String s = "str";
    // <- block
    //          ^ string
    char c = 'c';
    //       ^ string
    int[] xs = {1, 2};
    //          ^ block
    void f() {
        switch (s) {
            case "a":
                return;
                // <- block
        }
    }
}
