; Comments, strings and blocks in Go, for moat-syntax (see grammars/README.md).

(comment) @comment

[
  (interpreted_string_literal)
  (raw_string_literal)
  (rune_literal)
] @string

[
  (block)
  (field_declaration_list)
  (interface_type)
  (literal_value)
  (import_spec_list)
  (expression_switch_statement)
  (type_switch_statement)
  (select_statement)
] @block

; Parenthesised groups: `const ( .. )`, `var ( .. )`, `type ( .. )`.
(const_declaration "(") @block
(var_spec_list) @block
(type_declaration "(") @block

; Not blocks, but their named children are statements: cut points for `boundaries`.
(statement_list) @items
