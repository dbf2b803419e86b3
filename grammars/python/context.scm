; Comments, strings and blocks in Python, for moat-syntax (see grammars/README.md).

(comment) @comment

(string) @string

; f-string `{..}` is code: a block inside the string.
(interpolation) @block

[
  (block)
  (dictionary)
  (list)
  (set)
  (dictionary_comprehension)
  (list_comprehension)
  (set_comprehension)
] @block
