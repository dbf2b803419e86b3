; Definitions and references in Java, for moat-syntax (see grammars/README.md).
; Where two patterns capture the same @name node, the one written first wins.

[
  (class_declaration
    name: (identifier) @name)
  (record_declaration
    name: (identifier) @name)
  (enum_declaration
    name: (identifier) @name)
] @definition.class

[
  (interface_declaration
    name: (identifier) @name)
  (annotation_type_declaration
    name: (identifier) @name)
] @definition.interface

[
  (method_declaration
    name: (identifier) @name)
  (constructor_declaration
    name: (identifier) @name)
] @definition.method

; `static final` fields and interface constants.
(field_declaration
  (modifiers) @_modifiers
  declarator: (variable_declarator
    name: (identifier) @name)
  (#match? @_modifiers "(^|\\s)static(\\s|$)")
  (#match? @_modifiers "(^|\\s)final(\\s|$)")) @definition.constant

(constant_declaration
  declarator: (variable_declarator
    name: (identifier) @name)) @definition.constant

(enum_constant
  name: (identifier) @name) @definition.constant

; References

(method_invocation
  name: (identifier) @name
  arguments: (argument_list)) @reference.call

(object_creation_expression
  type: (type_identifier) @name) @reference.class

(superclass
  (type_identifier) @name) @reference.class

(super_interfaces
  (type_list
    (type_identifier) @name)) @reference.implementation
