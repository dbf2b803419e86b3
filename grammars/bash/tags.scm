; Definitions and references in Bash, for moat-syntax (see grammars/README.md).

(function_definition
  name: (word) @name) @definition.function

(command
  name: (command_name
    (word) @name)) @reference.call
