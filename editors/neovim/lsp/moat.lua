-- moat as a plain Neovim 0.11+ LSP config: `vim.lsp.enable('moat')` starts `moat serve` for the
-- languages below, without calling require('moat').setup().
--
-- Override anything with vim.lsp.config('moat', { ... }), e.g.
--   vim.lsp.config('moat', { settings = { moat = { modelPath = '/path/to/model', maxTokens = 48 } } })
--
-- Neovim 0.12+ shows the suggestions as ghost text once inline completion is enabled (done below
-- in on_attach); accept with vim.lsp.inline_completion.get() (see the README for a <Tab> mapping).
-- Neovim 0.11 has no ghost text of its own: the suggestion also comes as a completion item
-- (vim.lsp.completion.enable or any completion plugin), or use the plugin's setup() for ghost text.
return {
  cmd = { 'moat', 'serve' },
  filetypes = {
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
  },
  root_markers = { '.git' },
  -- Never empty: an empty Lua table would be sent as [] instead of {}.
  settings = { moat = { enable = true } },
  init_options = { moat = { enable = true } },
  handlers = {
    ['moat/status'] = function(err, result, ctx)
      if err or type(result) ~= 'table' then
        return
      end
      vim.g.moat_status = result.state
      if result.state == 'error' then
        vim.notify('moat: ' .. tostring(result.message), vim.log.levels.ERROR)
      end
      pcall(vim.api.nvim_exec_autocmds, 'User', { pattern = 'MoatStatus', data = result })
    end,
  },
  on_attach = function(_, bufnr)
    local ok, ic = pcall(function()
      return vim.lsp.inline_completion
    end)
    if ok and type(ic) == 'table' and ic.enable then
      ic.enable(true, { bufnr = bufnr })
    end
  end,
}
