-- Feedback tests (docs/feedback.md): accepting a suggestion in Neovim runs the item's command, so
-- the server records "accepted" with signal "command". Loaded by driver.lua, which passes its
-- helpers; returns the tests.

return function(h)
  local tests = {}

  --- A fresh feedback folder for one test, and the server environment that records into it.
  local function feedback_env(name)
    local dir = h.tmp .. '/feedback-' .. name
    vim.fn.delete(dir, 'rf')
    return dir, { MOAT_FEEDBACK = '1', MOAT_FEEDBACK_DIR = dir }
  end

  --- Waits for a record with `signal` in `dir`; returns it.
  local function wait_record(dir, signal)
    return h.wait_for(('a feedback record (%s) in %s'):format(signal, dir), h.WAIT_MS, function()
      local path = dir .. '/feedback.jsonl'
      if vim.fn.filereadable(path) == 0 then
        return nil
      end
      for _, line in ipairs(vim.fn.readfile(path)) do
        local ok, r = pcall(vim.json.decode, line)
        if ok and r.signal == signal then
          return r
        end
      end
      return nil
    end)
  end

  local ghost_dir, ghost_env = feedback_env('ghost')
  tests[#tests + 1] = {
    name = 'feedback: accepting ghost text (<Tab>) reports it to the server',
    mode = 'plugin-extmarks',
    env = ghost_env,
    run = function(child)
      local path = h.write_file('feedback_ghost.py', h.SINGLE)
      local text = h.ghost_accept_flow(child, nil, path, h.SINGLE, 4, '.join(')
      local r = wait_record(ghost_dir, 'command')
      h.eq({ 'inline', 'accepted', 'python', 'Neovim' }, { r.method, r.outcome, r.language, r.client },
        'the record')
      h.eq(vim.fn.strchars(text), r.accepted_chars, 'accepted characters')
      h.eq(nil, r.source, 'no source text by default')
    end,
  }

  local item_dir, item_env = feedback_env('item')
  tests[#tests + 1] = {
    name = 'feedback: vim.lsp.completion (0.11) runs the item command on accept',
    mode = 'plain',
    env = item_env,
    run = function(child)
      if child:lua([[return vim.lsp.completion == nil or vim.lsp.enable == nil]]) then
        error('SKIP: vim.lsp.completion needs Neovim 0.11+')
      end
      local path = h.write_file('feedback_item.py', h.ADD)
      child:cmd('edit ' .. vim.fn.fnameescape(path))
      child:wait_ready()
      child:lua(h.COMPLETION_ENABLE)
      child:lua('vim.api.nvim_win_set_cursor(0, { 2, 0 })')
      child:input('A a')
      h.wait_for('the typed text', 3000, function()
        return child:lua(h.LINES)[2] == '    return a'
      end)
      child:input('<Cmd>lua vim.lsp.completion.get()<CR>')
      h.accept_completion_item(child)
      local r = wait_record(item_dir, 'command')
      h.eq({ 'completion', 'accepted' }, { r.method, r.outcome }, 'the record')
    end,
  }

  return tests
end
