; Comments, strings and blocks in Bash, for moat-syntax (see grammars/README.md).

(comment) @comment

[
  (string)
  (raw_string)
  (ansi_c_string)
  (translated_string)
  (heredoc_body)
] @string

; `$(..)` and `${..}` inside a string are code: blocks inside the string.
[
  (command_substitution)
  (expansion)
] @block

[
  (compound_statement)
  (do_group)
  (subshell)
  (array)
] @block

; Not blocks, but their named children are statements: cut points for `boundaries`.
[
  (if_statement)
  (elif_clause)
  (else_clause)
  (case_item)
] @items
