; Comments, strings and blocks in JavaScript (and JSX), for moat-syntax (see grammars/README.md).

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
  (switch_body)
  (object)
  (array)
  (object_pattern)
  (array_pattern)
  (named_imports)
  (export_clause)
  (class_static_block)
  (jsx_expression)
] @block

; Not blocks, but their named children are statements: cut points for `boundaries`.
[
  (switch_case)
  (switch_default)
] @items
