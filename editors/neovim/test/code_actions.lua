-- Code action tests (issue 14): `vim.lsp.buf.code_action()` lists moat's actions (through
-- vim.ui.select, replaced here by one that records the titles and picks one), Neovim resolves the
-- chosen action (`codeAction/resolve`) and applies its edit. Loaded by driver.lua, which passes
-- its helpers; returns the tests.

return function(h)
  local tests = {}

  --- Replaces vim.ui.select: records the offered titles in vim.g.moat_actions and picks the one
  --- whose title contains vim.g.moat_pick.
  local PICKER = [[
    vim.g.moat_pick = ...
    vim.g.moat_actions = nil
    vim.ui.select = function(items, opts, on_choice)
      local titles, chosen = {}, nil
      for i, item in ipairs(items) do
        local title = opts.format_item and opts.format_item(item) or tostring(item)
        titles[#titles + 1] = title
        if not chosen and title:find(vim.g.moat_pick, 1, true) then
          chosen = i
        end
      end
      vim.g.moat_actions = titles
      on_choice(chosen and items[chosen] or nil, chosen)
    end
  ]]

  local FIXTURE = { 'def area(width, height):', '    return width * height' }

  tests[#tests + 1] = {
    name = 'code action: vim.lsp.buf.code_action() lists moat\'s actions and applies the chosen one',
    mode = 'plugin',
    run = function(child)
      local path = h.write_file('actions.py', FIXTURE)
      child:cmd('edit ' .. vim.fn.fnameescape(path))
      child:wait_attached()
      h.wait_for('the model', h.WAIT_MS, function()
        return child:lua('return vim.g.moat_status == "ready"')
      end)
      child:lua(PICKER, 'write the doc comment')
      child:lua('vim.api.nvim_win_set_cursor(0, { 2, 6 })')
      child:lua('vim.lsp.buf.code_action()')
      local titles = h.wait_for('the code action menu', h.WAIT_MS, function()
        return child:lua('return vim.g.moat_actions')
      end)
      local listed = table.concat(titles, ' | ')
      assert(listed:find('write the doc comment of `area`', 1, true), 'offered: ' .. listed)
      assert(listed:find('write a test for `area`', 1, true), 'offered: ' .. listed)
      -- The tiny test model's docstring, applied by Neovim after resolving the action.
      local lines = h.wait_for('the docstring in the buffer', h.WAIT_MS, function()
        local l = child:lua(h.LINES)
        return #l > #FIXTURE and l or nil
      end)
      io.stdout:write('# ' .. table.concat(lines, '\n# ') .. '\n')
      h.eq('def area(width, height):', lines[1], 'the header stays')
      assert(lines[2]:match('^    """'), 'a docstring opens the body: ' .. vim.inspect(lines))
      h.eq('    return width * height', lines[#lines], 'the body stays last')
      local parses = child:lua([[
        local ok, parser = pcall(vim.treesitter.get_parser, 0, 'python')
        if not ok or not parser then return true end
        return not parser:parse()[1]:root():has_error()
      ]])
      assert(parses, 'the buffer parses: ' .. vim.inspect(lines))
    end,
  }

  return tests
end
