; Comments, strings and blocks in C++, for moat-syntax (see grammars/README.md).

(comment) @comment

[
  (string_literal)
  (raw_string_literal)
  (char_literal)
  (system_lib_string)
] @string

[
  (compound_statement)
  (field_declaration_list)
  (declaration_list)
  (enumerator_list)
  (initializer_list)
  (requirement_seq)
] @block

; Not blocks, but their named children are statements: cut points for `boundaries`.
[
  (case_statement)
  (preproc_if)
  (preproc_ifdef)
  (preproc_else)
  (preproc_elif)
] @items
