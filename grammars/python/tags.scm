; Definitions and references in Python, for moat-syntax (see grammars/README.md).
; Where two patterns capture the same @name node, the one written first wins.

; Methods: functions directly in a class body (possibly decorated).
(class_definition
  body: (block
    (function_definition
      name: (identifier) @name) @definition.method))

(class_definition
  body: (block
    (decorated_definition
      definition: (function_definition
        name: (identifier) @name) @definition.method)))

(function_definition
  name: (identifier) @name) @definition.function

(class_definition
  name: (identifier) @name) @definition.class

; Module-level assignments, as upstream tree-sitter-python does.
(module
  (expression_statement
    (assignment
      left: (identifier) @name) @definition.constant))

(type_alias_statement
  left: (type (identifier) @name)) @definition.type

(call
  function: [
    (identifier) @name
    (attribute
      attribute: (identifier) @name)
  ]) @reference.call
