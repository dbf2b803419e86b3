; Comments, strings and blocks in Java, for moat-syntax (see grammars/README.md).

[
  (line_comment)
  (block_comment)
] @comment

[
  (string_literal)
  (character_literal)
] @string

[
  (block)
  (class_body)
  (interface_body)
  (enum_body)
  (annotation_type_body)
  (constructor_body)
  (switch_block)
  (array_initializer)
  (element_value_array_initializer)
  (module_body)
] @block

; Not blocks, but their named children are statements: cut points for `boundaries`.
(switch_block_statement_group) @items
