--- :checkhealth moat
local M = {}

local health = vim.health

local function run(cmd)
  local ok, out = pcall(vim.fn.system, cmd)
  if not ok then
    return nil, tostring(out)
  end
  return vim.v.shell_error == 0 and out or nil, out
end

function M.check()
  health.start('moat: Neovim')
  local v = vim.version()
  local version = ('%d.%d.%d'):format(v.major, v.minor, v.patch)
  if vim.fn.has('nvim-0.10') == 0 then
    health.error('Neovim ' .. version .. ' is too old: moat needs 0.10 or newer')
  else
    health.ok('Neovim ' .. version)
  end
  local moat = require('moat')
  if moat.uses_builtin() then
    health.ok('ghost text: built-in vim.lsp.inline_completion (Neovim 0.12+)')
  elseif moat.config.inline == 'builtin' then
    health.warn(
      'inline = "builtin" but this Neovim has no vim.lsp.inline_completion; using the plugin\'s extmarks'
    )
  else
    health.ok('ghost text: drawn by the plugin (extmarks)')
  end
  if moat.config.accept_key then
    health.ok('accept key: ' .. moat.config.accept_key)
  else
    health.info('no accept key mapped (call require("moat").accept() from your own mapping)')
  end

  health.start('moat: server')
  local cmd = moat.config.cmd or { 'moat', 'serve' }
  local exe = cmd[1]
  if vim.fn.executable(exe) == 0 then
    health.error(
      ('`%s` not found or not executable'):format(exe),
      { 'Install moat and put it on PATH, or pass cmd = { "/path/to/moat", "serve" } to setup()' }
    )
    return
  end
  health.ok(('`%s` found: %s'):format(exe, vim.fn.exepath(exe)))
  local out = run({ exe, '--version' })
  if out then
    health.ok(vim.trim(out))
  else
    health.warn('`' .. exe .. ' --version` failed')
  end
  local doctor = { exe, 'doctor' }
  local settings = moat.server_settings()
  local model = type(settings) == 'table' and settings.modelPath or nil
  for i, arg in ipairs(cmd) do
    if arg == '--model' and cmd[i + 1] and not model then
      model = cmd[i + 1]
    end
  end
  if model then
    vim.list_extend(doctor, { '--model', model })
  end
  if type(settings) == 'table' and settings.onnxruntimePath then
    vim.list_extend(doctor, { '--onnxruntime', settings.onnxruntimePath })
  end
  local report, raw = run(doctor)
  if report then
    health.ok('`moat doctor` passed')
    for _, line in ipairs(vim.split(vim.trim(report), '\n')) do
      if line ~= '' then
        health.info(line)
      end
    end
  else
    health.error('`moat doctor` failed', vim.split(vim.trim(raw or ''), '\n'))
  end

  health.start('moat: clients')
  local clients = moat.clients()
  if #clients == 0 then
    health.info('no moat client running (open a file of a supported type)')
  end
  for _, client in ipairs(clients) do
    local st = moat.status[client.id] or { state = vim.g.moat_status }
    local msg = ('client %d (%s): %s %s'):format(
      client.id,
      client.config and client.config.root_dir or '-',
      st.state or 'unknown',
      st.message or ''
    )
    if st.state == 'error' then
      health.error(msg)
    elseif st.state == 'ready' then
      health.ok(msg)
    else
      health.info(msg)
    end
  end
  if not moat.enabled then
    health.warn('suggestions are disabled (:Moat enable)')
  end
end

return M
