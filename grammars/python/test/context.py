# a comment
# <- comment
x = "a string"  # trailing
#    ^ string
#               ^ comment
# ^ !string
y = f"value {x + 1} done"
#     ^ string
#            ^ block
doc = """
multi-line
# not a comment
# <- string
# <- !comment
"""


def f(a, b):
#     ^ !block
    if a:
    # <- block
        return {"k": [1, 2]}
        #      ^ block
        #             ^ block
    return b
    # <- block


lambda_ = [n for n in range(3)]
#            ^ block
