--- moat for Neovim: starts `moat serve` as an LSP client and shows its suggestions as ghost text.
---
--- Neovim >= 0.12: the built-in `vim.lsp.inline_completion` renders and accepts the suggestion.
--- Neovim 0.10 / 0.11: `moat.ghost` renders it with extmarks (see ghost.lua).
---
--- require("moat").setup({
---   cmd = { "moat", "serve" },   -- how to start the server
---   model = nil,                 -- model folder (moat.modelPath); nil = the server's default
---   debounce_ms = 75,            -- client-side wait after a keystroke before asking (0.10/0.11)
---   accept_key = "<Tab>",        -- accepts when a suggestion is shown, else acts as usual
---   dismiss_key = false,         -- e.g. "<C-]>"; <Esc> / leaving insert mode always dismisses
---   filetypes = { ... },
---   settings = { maxTokens = 64, multiline = true, ... },  -- the server's `moat` settings
---   inline = "auto",             -- "auto" | "builtin" (0.12+) | "plugin" (our extmarks)
--- })
local M = {}

local api = vim.api

M.default_filetypes = {
  'python',
  'rust',
  'javascript',
  'javascriptreact',
  'typescript',
  'typescriptreact',
  'go',
  'java',
  'c',
  'cpp',
  'json',
  'jsonc',
  'toml',
  'sh',
  'bash',
}

---@class moat.Config
M.defaults = {
  cmd = { 'moat', 'serve' },
  model = nil,
  debounce_ms = 75,
  accept_key = '<Tab>',
  dismiss_key = false,
  filetypes = M.default_filetypes,
  root_markers = { '.git' },
  settings = {},
  inline = 'auto',
  hl_group = 'MoatGhost',
  -- How clients start: "auto" (vim.lsp.config + vim.lsp.enable on 0.11+, else a FileType
  -- autocmd + vim.lsp.start) or "lsp_start" (always the latter).
  start = 'auto',
}

---@type moat.Config
M.config = vim.deepcopy(M.defaults)

--- Whether suggestions are requested and shown (toggled by :Moat toggle).
M.enabled = true

--- Last model `moat/status` per client id: { state = "loading"|"ready"|"error", message = "..." }.
M.status = {}

--- Last workspace-index `moat/status` per client id: { state = "indexing"|"indexed", message }.
M.index_status = {}

--- The `moat/status` states about the model (the others are about the workspace index).
local MODEL_STATES = { loading = true, ready = true, error = true }

local function has(version)
  return vim.fn.has('nvim-' .. version) == 1
end

--- True when the built-in inline completion (Neovim 0.12+) is used.
function M.uses_builtin()
  if M.config.inline == 'plugin' then
    return false
  end
  local ok, ic = pcall(function()
    return vim.lsp.inline_completion
  end)
  return ok and type(ic) == 'table' and type(ic.enable) == 'function' and type(ic.get) == 'function'
end

--- The server's `moat` settings section, from `settings` and the shortcuts (`model`).
function M.server_settings()
  local s = vim.deepcopy(M.config.settings or {})
  if M.config.model and s.modelPath == nil then
    s.modelPath = vim.fn.fnamemodify(vim.fn.expand(M.config.model), ':p'):gsub('/$', '')
  end
  if s.enable == nil then
    -- Never empty: an empty Lua table is sent as [] and the server reads an object.
    s.enable = true
  end
  return s
end

--- The model just became ready: ask the built-in inline completion (0.12+) again where the user
--- is typing. Requests made while the model loaded are answered by the server once it is ready;
--- this covers the ones the editor gave up on. The built-in asks (after its own debounce) on
--- CursorMovedI in its per-buffer augroup, so that event is fired there only.
function M.rerequest_builtin(client_id)
  local bufnr = api.nvim_get_current_buf()
  local client = vim.lsp.get_client_by_id(client_id)
  if not M.enabled or not client or not client.attached_buffers[bufnr] then
    return
  end
  if api.nvim_get_mode().mode:sub(1, 1) ~= 'i' or M.visible() then
    return
  end
  local group = ('nvim.lsp.inline_completion:%d'):format(bufnr)
  local ok = pcall(api.nvim_exec_autocmds, 'CursorMovedI', { group = group, buffer = bufnr, modeline = false })
  if not ok then
    -- Another layout of the built-in: every CursorMovedI handler of the buffer.
    pcall(api.nvim_exec_autocmds, 'CursorMovedI', { buffer = bufnr, modeline = false })
  end
end

local function set_status(client_id, result)
  if type(result) ~= 'table' then
    return
  end
  if not MODEL_STATES[result.state] then
    M.index_status[client_id] = result
    pcall(api.nvim_exec_autocmds, 'User', { pattern = 'MoatStatus', data = result, modeline = false })
    return
  end
  local previous = M.status[client_id]
  M.status[client_id] = result
  vim.g.moat_status = result.state
  if result.state == 'error' and (not previous or previous.message ~= result.message) then
    vim.notify('moat: ' .. tostring(result.message), vim.log.levels.ERROR)
  end
  pcall(api.nvim_exec_autocmds, 'User', { pattern = 'MoatStatus', data = result, modeline = false })
  if result.state == 'ready' then
    if M.uses_builtin() then
      vim.schedule(function()
        M.rerequest_builtin(client_id)
      end)
    else
      require('moat.ghost').on_ready(client_id)
    end
  end
end

--- Handlers for the server's custom notifications.
M.handlers = {
  ['moat/status'] = function(err, result, ctx)
    if not err then
      set_status(ctx.client_id, result)
    end
  end,
}

--- A short text for a statusline: "moat: ready", "moat: loading", "moat: off", "".
function M.statusline()
  if not M.enabled then
    return 'moat: off'
  end
  local state = vim.g.moat_status
  return state and ('moat: ' .. state) or ''
end

--- The LSP client config (as for vim.lsp.start / vim.lsp.config).
function M.client_config()
  local settings = M.server_settings()
  return {
    name = 'moat',
    cmd = M.config.cmd,
    filetypes = M.config.filetypes,
    root_markers = M.config.root_markers,
    init_options = { moat = settings },
    settings = { moat = settings },
    handlers = M.handlers,
    -- The LspAttach autocmd does the work (replaces lsp/moat.lua's on_attach).
    on_attach = function() end,
  }
end

local function is_moat(client)
  return client and client.name == 'moat'
end

--- Called for every client that attaches to a buffer (LspAttach).
local function on_attach(client, bufnr)
  if not is_moat(client) then
    return
  end
  -- The handler table is per client; clients started from lsp/moat.lua without setup() get it here.
  client.handlers = client.handlers or {}
  if not client.handlers['moat/status'] then
    client.handlers['moat/status'] = M.handlers['moat/status']
  end
  if M.uses_builtin() then
    if M.enabled then
      vim.lsp.inline_completion.enable(true, { bufnr = bufnr })
    end
  else
    require('moat.ghost').attach(bufnr, client)
  end
end

local function start_for_buffer(bufnr)
  if not api.nvim_buf_is_valid(bufnr) or vim.bo[bufnr].buftype ~= '' then
    return
  end
  if not vim.tbl_contains(M.config.filetypes, vim.bo[bufnr].filetype) then
    return
  end
  local config = M.client_config()
  local name = api.nvim_buf_get_name(bufnr)
  local root = vim.fs.root and vim.fs.root(bufnr, M.config.root_markers) or nil
  config.root_dir = root or (name ~= '' and vim.fs.dirname(name)) or vim.fn.getcwd()
  config.filetypes = nil
  config.root_markers = nil
  vim.lsp.start(config, { bufnr = bufnr })
end

--- Accepts the shown suggestion; true when one was accepted.
function M.accept()
  if M.uses_builtin() then
    return vim.lsp.inline_completion.get() == true
  end
  return require('moat.ghost').accept()
end

--- Hides the shown suggestion; true when one was shown.
function M.dismiss()
  if M.uses_builtin() then
    local shown = M.visible()
    if shown then
      -- Leaving and re-entering would be heavy: clearing the built-in namespace hides it until the
      -- next keystroke.
      local ns = api.nvim_get_namespaces()['nvim.lsp.inline_completion']
      if ns then
        api.nvim_buf_clear_namespace(0, ns, 0, -1)
      end
    end
    return shown
  end
  return require('moat.ghost').dismiss()
end

--- Whether a suggestion is shown in the current buffer.
function M.visible()
  if M.uses_builtin() then
    local ns = api.nvim_get_namespaces()['nvim.lsp.inline_completion']
    return ns ~= nil and #api.nvim_buf_get_extmarks(0, ns, 0, -1, { limit = 1 }) > 0
  end
  return require('moat.ghost').visible()
end

--- The mapping for a key that acts on the suggestion when one is shown, and otherwise does what
--- the key did before (an earlier mapping, or the key itself).
local function map_key(lhs, action)
  local previous = vim.fn.maparg(lhs, 'i', false, true)
  if type(previous) ~= 'table' or vim.tbl_isempty(previous) or previous.desc == 'moat' then
    previous = nil
  end
  local keys = api.nvim_replace_termcodes(lhs, true, false, true)
  vim.keymap.set('i', lhs, function()
    if action() then
      return
    end
    if previous and previous.callback then
      local out = previous.callback()
      if previous.expr == 1 and type(out) == 'string' and out ~= '' then
        if previous.replace_keycodes == 1 then
          out = api.nvim_replace_termcodes(out, true, false, true)
        end
        api.nvim_feedkeys(out, previous.noremap == 1 and 'in' or 'im', false)
      end
    elseif previous and previous.rhs and previous.rhs ~= '' then
      local rhs = api.nvim_replace_termcodes(previous.rhs, true, false, true)
      if previous.expr == 1 then
        rhs = api.nvim_eval(previous.rhs)
      end
      api.nvim_feedkeys(rhs, previous.noremap == 1 and 'in' or 'im', false)
    else
      -- 'i': before keys already typed after this one.
      api.nvim_feedkeys(keys, 'in', false)
    end
  end, { desc = 'moat', silent = true })
end

function M.enable()
  M.enabled = true
  if M.uses_builtin() then
    for _, client in ipairs(M.clients()) do
      for bufnr in pairs(client.attached_buffers) do
        vim.lsp.inline_completion.enable(true, { bufnr = bufnr })
      end
    end
  end
  pcall(api.nvim_exec_autocmds, 'User', { pattern = 'MoatStatus', data = { state = 'enabled' } })
end

function M.disable()
  M.enabled = false
  if M.uses_builtin() then
    for _, client in ipairs(M.clients()) do
      for bufnr in pairs(client.attached_buffers) do
        vim.lsp.inline_completion.enable(false, { bufnr = bufnr })
      end
    end
  else
    require('moat.ghost').dismiss_all()
  end
  pcall(api.nvim_exec_autocmds, 'User', { pattern = 'MoatStatus', data = { state = 'disabled' } })
end

function M.toggle()
  if M.enabled then
    M.disable()
  else
    M.enable()
  end
end

--- The running moat clients.
function M.clients()
  if vim.lsp.get_clients then
    return vim.lsp.get_clients({ name = 'moat' })
  end
  return vim.lsp.get_active_clients({ name = 'moat' })
end

--- Sends changed settings to running servers (workspace/didChangeConfiguration).
function M.update_settings(settings)
  M.config.settings = vim.tbl_deep_extend('force', M.config.settings or {}, settings or {})
  local section = M.server_settings()
  for _, client in ipairs(M.clients()) do
    client.settings = { moat = section }
    local params = { settings = { moat = section } }
    if has('0.11') then
      client:notify('workspace/didChangeConfiguration', params)
    else
      client.notify('workspace/didChangeConfiguration', params)
    end
  end
end

local setup_done = false

---@param opts? moat.Config
function M.setup(opts)
  opts = opts or {}
  -- Lists replace (cmd, filetypes), tables merge (settings).
  local config = vim.tbl_deep_extend('force', vim.deepcopy(M.defaults), opts)
  for _, key in ipairs({ 'cmd', 'filetypes', 'root_markers' }) do
    if opts[key] then
      config[key] = opts[key]
    end
  end
  M.config = config

  api.nvim_set_hl(0, 'MoatGhost', { link = 'Comment', default = true })

  local group = api.nvim_create_augroup('moat', { clear = true })
  api.nvim_create_autocmd('LspAttach', {
    group = group,
    callback = function(args)
      local client = vim.lsp.get_client_by_id(args.data.client_id)
      on_attach(client, args.buf)
    end,
  })

  if config.accept_key and config.accept_key ~= '' then
    map_key(config.accept_key, M.accept)
  end
  if config.dismiss_key and config.dismiss_key ~= '' then
    map_key(config.dismiss_key, M.dismiss)
  end

  if config.start ~= 'lsp_start' and has('0.11') and vim.lsp.config and vim.lsp.enable then
    -- Neovim 0.11+: lsp/moat.lua (shipped with this plugin) merged with the options.
    vim.lsp.config('moat', M.client_config())
    vim.lsp.enable('moat')
  else
    api.nvim_create_autocmd('FileType', {
      group = group,
      callback = function(args)
        start_for_buffer(args.buf)
      end,
    })
    if not setup_done then
      for _, bufnr in ipairs(api.nvim_list_bufs()) do
        if api.nvim_buf_is_loaded(bufnr) then
          start_for_buffer(bufnr)
        end
      end
    end
  end
  -- Clients that were already running (setup called late).
  for _, client in ipairs(M.clients()) do
    for bufnr in pairs(client.attached_buffers) do
      on_attach(client, bufnr)
    end
  end
  setup_done = true
end

return M
