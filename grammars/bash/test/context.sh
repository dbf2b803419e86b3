# comment
# <- comment
name="value $(date) end"
#     ^ string
#             ^ block
raw='single'
#    ^ string
f() {
  local x=1
  # <- block
}
for i in 1 2; do
  echo "$i"
  # <- block
done
cat <<EOT
heredoc text
# <- string
EOT
