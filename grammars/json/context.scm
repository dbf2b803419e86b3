; Comments, strings and blocks in JSON (comments as in JSONC), for moat-syntax
; (see grammars/README.md).

(comment) @comment

(string) @string

[
  (object)
  (array)
] @block
