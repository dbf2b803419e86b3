; Definitions and references in C++, for moat-syntax (see grammars/README.md).
; Where two patterns capture the same @name node, the one written first wins.

; Methods defined or declared in a class body.
(field_declaration_list
  (function_definition
    declarator: (function_declarator
      declarator: [
        (field_identifier)
        (identifier)
        (destructor_name)
        (operator_name)
      ] @name)) @definition.method)

(field_declaration_list
  (field_declaration
    declarator: (function_declarator
      declarator: [
        (field_identifier)
        (destructor_name)
        (operator_name)
      ] @name)) @definition.method)

(field_declaration_list
  (declaration
    declarator: (function_declarator
      declarator: [
        (identifier)
        (destructor_name)
      ] @name)) @definition.method)

; Methods defined out of line: `int Foo::bar() {}`.
(function_definition
  declarator: (function_declarator
    declarator: (qualified_identifier
      name: [
        (identifier)
        (destructor_name)
        (operator_name)
      ] @name))) @definition.method

(function_definition
  declarator: [
    (function_declarator
      declarator: (identifier) @name)
    (pointer_declarator
      declarator: (function_declarator
        declarator: (identifier) @name))
    (reference_declarator
      (function_declarator
        declarator: (identifier) @name))
  ]) @definition.function

; Prototypes.
(declaration
  declarator: [
    (function_declarator
      declarator: (identifier) @name)
    (pointer_declarator
      declarator: (function_declarator
        declarator: (identifier) @name))
  ]) @definition.function

[
  (class_specifier
    name: (type_identifier) @name
    body: (_))
  (struct_specifier
    name: (type_identifier) @name
    body: (_))
  (union_specifier
    name: (type_identifier) @name
    body: (_))
] @definition.class

(enum_specifier
  name: (type_identifier) @name
  body: (_)) @definition.type

(type_definition
  declarator: (type_identifier) @name) @definition.type

(alias_declaration
  name: (type_identifier) @name) @definition.type

(namespace_definition
  name: [
    (namespace_identifier)
    (nested_namespace_specifier)
  ] @name) @definition.module

(concept_definition
  name: (identifier) @name) @definition.interface

(preproc_def
  name: (identifier) @name) @definition.constant

(preproc_function_def
  name: (identifier) @name) @definition.macro

(enumerator
  name: (identifier) @name) @definition.constant

; References

(call_expression
  function: [
    (identifier) @name
    (field_expression
      field: (field_identifier) @name)
    (qualified_identifier
      name: (identifier) @name)
  ]) @reference.call

(new_expression
  type: (type_identifier) @name) @reference.class
