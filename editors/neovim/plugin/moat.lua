-- :Moat enable | disable | toggle | status. Nothing starts until require('moat').setup() (or
-- vim.lsp.enable('moat') on Neovim 0.11+).
if vim.g.loaded_moat then
  return
end
vim.g.loaded_moat = true

vim.api.nvim_create_user_command('Moat', function(args)
  local moat = require('moat')
  local sub = args.fargs[1] or 'status'
  if sub == 'enable' then
    moat.enable()
  elseif sub == 'disable' then
    moat.disable()
  elseif sub == 'toggle' then
    moat.toggle()
  elseif sub == 'status' then
    local lines = { ('moat: %s'):format(moat.enabled and 'enabled' or 'disabled') }
    for _, client in ipairs(moat.clients()) do
      local st = moat.status[client.id] or {}
      lines[#lines + 1] = ('  client %d: %s %s'):format(client.id, st.state or vim.g.moat_status or '?', st.message or '')
    end
    if #lines == 1 then
      lines[#lines + 1] = '  no moat server running'
    end
    vim.notify(table.concat(lines, '\n'))
  else
    vim.notify('moat: unknown subcommand ' .. sub, vim.log.levels.ERROR)
  end
end, {
  nargs = '?',
  complete = function()
    return { 'enable', 'disable', 'toggle', 'status' }
  end,
  desc = 'moat: enable, disable, toggle or show the status of ghost-text completion',
})
