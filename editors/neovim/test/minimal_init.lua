-- Init for the Neovim under test (started by test/driver.lua with --embed --headless --clean).
-- MOAT_TEST_MODE: "plugin" (require('moat').setup), "plain" (lsp/moat.lua + vim.lsp.enable),
-- "plugin-extmarks" (setup with inline = "plugin", i.e. our extmarks even on 0.12),
-- "plugin-lsp-start" (as plugin-extmarks, clients started as on Neovim 0.10).
for _, provider in ipairs({ 'python3', 'ruby', 'perl', 'node' }) do
  vim.g['loaded_' .. provider .. '_provider'] = 0
end
vim.o.swapfile = false
vim.o.shadafile = 'NONE'

local root = assert(vim.env.MOAT_NVIM_ROOT, 'MOAT_NVIM_ROOT not set')
vim.opt.runtimepath:prepend(root)
vim.cmd('runtime plugin/moat.lua')

local cmd = { assert(vim.env.MOAT_BIN), 'serve', '--model', assert(vim.env.MOAT_MODEL) }
if vim.env.MOAT_LOG_FILE then
  vim.list_extend(cmd, { '--log-file', vim.env.MOAT_LOG_FILE })
end
local mode = vim.env.MOAT_TEST_MODE or 'plugin'

if mode == 'plugin' or mode == 'plugin-extmarks' or mode == 'plugin-lsp-start' then
  require('moat').setup({
    cmd = cmd,
    debounce_ms = 30,
    inline = mode == 'plugin' and 'auto' or 'plugin',
    -- plugin-lsp-start: the Neovim 0.10 way of starting clients (FileType + vim.lsp.start).
    start = mode == 'plugin-lsp-start' and 'lsp_start' or 'auto',
    settings = { maxTokens = 48 },
  })
elseif mode == 'plain' then
  vim.lsp.config('moat', { cmd = cmd })
  vim.lsp.enable('moat')
else
  error('unknown MOAT_TEST_MODE ' .. mode)
end
