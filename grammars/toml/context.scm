; Comments, strings and blocks in TOML, for moat-syntax (see grammars/README.md).

(comment) @comment

(string) @string

[
  (inline_table)
  (array)
] @block

; Not blocks, but their named children (key/value pairs) are items: cut points for
; `boundaries`.
[
  (table)
  (table_array_element)
] @items
