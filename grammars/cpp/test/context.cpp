#include "local.h"
//        ^ string
// comment
// <- comment
namespace n {
int x = 1;
// <- block
class C {
    int a;
    // <- block
};
auto s = R"(raw)";
//          ^ string
int f() {
    auto l = [](int v) { return v; };
    //                   ^ block
    return 0;
}
}
