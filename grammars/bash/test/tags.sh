#!/usr/bin/env bash

greet() {
# <- definition.function
  echo "hello $1"
  # <- reference.call
}

function cleanup {
#        ^ definition.function
  rm -rf "$tmp"
  # <- reference.call
}

greet world
# <- reference.call
