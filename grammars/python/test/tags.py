import os

MAX_RETRIES = 3
# <- definition.constant


def top_level(x, y=None):
#   ^ definition.function
# <- !definition.function
    return helper(x)
    #      ^ reference.call


class Greeter:
#     ^ definition.class
    def greet(self, name):
    #   ^ definition.method
        print(name.upper())
        #          ^ reference.call
        # <- reference.call

    @staticmethod
    def make():
    #   ^ definition.method
        def inner():
        #   ^ definition.function
        #   ^ !definition.method
            pass
        return Greeter()
        #      ^ reference.call


type Vector = list[float]
#    ^ definition.type
