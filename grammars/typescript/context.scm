; Comments, strings and blocks in TypeScript and TSX, for moat-syntax (see grammars/README.md).
; Both grammars share this file, so it uses only nodes that exist in both.

[
  (comment)
  (html_comment)
] @comment

[
  (string)
  (template_string)
  (regex)
] @string

; `${..}` is code: a block inside the template string.
(template_substitution) @block

[
  (statement_block)
  (class_body)
  (interface_body)
  (enum_body)
  (object_type)
  (switch_body)
  (object)
  (array)
  (object_pattern)
  (array_pattern)
  (named_imports)
  (export_clause)
  (class_static_block)
] @block

; Not blocks, but their named children are statements: cut points for `boundaries`.
[
  (switch_case)
  (switch_default)
] @items
