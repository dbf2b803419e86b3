; Definitions and references in Rust, for moat-syntax (see grammars/README.md).
; Where two patterns capture the same @name node, the one written first wins.

; Methods: functions in impl and trait bodies.
(impl_item
  body: (declaration_list
    (function_item
      name: (identifier) @name) @definition.method))

(trait_item
  body: (declaration_list
    [
      (function_item
        name: (identifier) @name)
      (function_signature_item
        name: (identifier) @name)
    ] @definition.method))

(function_item
  name: (identifier) @name) @definition.function

(function_signature_item
  name: (identifier) @name) @definition.function

[
  (struct_item
    name: (type_identifier) @name)
  (enum_item
    name: (type_identifier) @name)
  (union_item
    name: (type_identifier) @name)
] @definition.class

(trait_item
  name: (type_identifier) @name) @definition.interface

(type_item
  name: (type_identifier) @name) @definition.type

[
  (const_item
    name: (identifier) @name)
  (static_item
    name: (identifier) @name)
] @definition.constant

(mod_item
  name: (identifier) @name) @definition.module

(macro_definition
  name: (identifier) @name) @definition.macro

; References

(call_expression
  function: [
    (identifier) @name
    (field_expression
      field: (field_identifier) @name)
    (scoped_identifier
      name: (identifier) @name)
  ]) @reference.call

(macro_invocation
  macro: (identifier) @name) @reference.call

(struct_expression
  name: (type_identifier) @name) @reference.class

(impl_item
  trait: (type_identifier) @name) @reference.implementation

(impl_item
  type: (type_identifier) @name
  !trait) @reference.implementation
