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
-- For Neovim, moat sends that item as a snippet (escaped), because vim.lsp.completion keeps a
-- plain-text item only up to its first whitespace; accepting it inserts the whole suggestion,
-- multi-line included (see the README for the few things snippet expansion changes).
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
      -- "indexing" / "indexed" are about the workspace index, not the model.
      if result.state == 'loading' or result.state == 'ready' or result.state == 'error' then
        vim.g.moat_status = result.state
      end
      if result.state == 'error' then
        vim.notify('moat: ' .. tostring(result.message), vim.log.levels.ERROR)
      end
      pcall(vim.api.nvim_exec_autocmds, 'User', { pattern = 'MoatStatus', data = result })
      -- 0.12+: once the model is ready, ask again where the user is typing (the built-in inline
      -- completion asks on CursorMovedI, in its per-buffer augroup).
      local bufnr = vim.api.nvim_get_current_buf()
      local client = vim.lsp.get_client_by_id(ctx.client_id)
      if result.state == 'ready' and vim.lsp.inline_completion and client and client.attached_buffers[bufnr] then
        vim.schedule(function()
          if vim.api.nvim_get_mode().mode:sub(1, 1) == 'i' then
            local group = ('nvim.lsp.inline_completion:%d'):format(bufnr)
            pcall(vim.api.nvim_exec_autocmds, 'CursorMovedI', { group = group, buffer = bufnr, modeline = false })
          end
        end)
      end
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
