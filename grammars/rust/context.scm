; Comments, strings and blocks in Rust, for moat-syntax (see grammars/README.md).

[
  (line_comment)
  (block_comment)
] @comment

[
  (string_literal)
  (raw_string_literal)
  (char_literal)
] @string

[
  (block)
  (declaration_list)
  (field_declaration_list)
  (enum_variant_list)
  (match_block)
  (field_initializer_list)
  (use_list)
  (array_expression)
] @block

; Macro bodies delimited by braces or brackets: `macro_rules! m { .. }`, `vec![..]`.
(token_tree
  .
  [
    "{"
    "["
  ]) @block
