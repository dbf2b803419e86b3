; Definitions and references in TypeScript and TSX, for moat-syntax (see grammars/README.md).
; Both grammars share this file, so it uses only nodes that exist in both.
; Where two patterns capture the same @name node, the one written first wins.

[
  (method_definition
    name: [
      (property_identifier)
      (private_property_identifier)
    ] @name)
  (method_signature
    name: (property_identifier) @name)
  (abstract_method_signature
    name: (property_identifier) @name)
] @definition.method

[
  (class
    name: (_) @name)
  (class_declaration
    name: (_) @name)
  (abstract_class_declaration
    name: (_) @name)
] @definition.class

(interface_declaration
  name: (type_identifier) @name) @definition.interface

[
  (type_alias_declaration
    name: (type_identifier) @name)
  (enum_declaration
    name: (identifier) @name)
] @definition.type

[
  (module
    name: [
      (identifier)
      (nested_identifier)
      (string)
    ] @name)
  (internal_module
    name: [
      (identifier)
      (nested_identifier)
    ] @name)
] @definition.module

[
  (function_expression
    name: (identifier) @name)
  (function_declaration
    name: (identifier) @name)
  (generator_function
    name: (identifier) @name)
  (generator_function_declaration
    name: (identifier) @name)
  (function_signature
    name: (identifier) @name)
] @definition.function

; `const f = () => {}`, `var f = function () {}`
(variable_declarator
  name: (identifier) @name
  value: [
    (arrow_function)
    (function_expression)
    (generator_function)
  ]) @definition.function

(assignment_expression
  left: [
    (identifier) @name
    (member_expression
      property: (property_identifier) @name)
  ]
  right: [
    (arrow_function)
    (function_expression)
  ]) @definition.function

(pair
  key: (property_identifier) @name
  value: [
    (arrow_function)
    (function_expression)
  ]) @definition.function

; Top-level `const` (exported or not) that is not a function.
(program
  (lexical_declaration
    kind: "const"
    (variable_declarator
      name: (identifier) @name) @definition.constant))

(program
  (export_statement
    declaration: (lexical_declaration
      kind: "const"
      (variable_declarator
        name: (identifier) @name) @definition.constant)))

; References

(call_expression
  function: (identifier) @name
  (#not-eq? @name "require")) @reference.call

(call_expression
  function: (member_expression
    property: (property_identifier) @name)) @reference.call

(new_expression
  constructor: (identifier) @name) @reference.class

(type_annotation
  (type_identifier) @name) @reference.type

(implements_clause
  (type_identifier) @name) @reference.implementation
