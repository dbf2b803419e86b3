-- Drives a real Neovim (child, `--embed --headless`) over msgpack-RPC like a user at the keyboard:
-- keys go through nvim_input, so insert mode, TextChangedI/CursorMovedI and mappings behave as in
-- an interactive session. Run with:  nvim --clean --headless -l test/driver.lua [TEST...]
-- Env: NVIM_UNDER_TEST (the nvim to test), MOAT_BIN, MOAT_MODEL, MOAT_NVIM_ROOT, MOAT_TMP.
-- Prints "ok - NAME (S s)", "not ok - NAME: why" or "skip - NAME: why" per test.

local nvim = vim.env.NVIM_UNDER_TEST or vim.v.progpath
local tmp = vim.env.MOAT_TMP or vim.fn.tempname()
vim.fn.mkdir(tmp, 'p')
local init = vim.env.MOAT_NVIM_ROOT .. '/test/minimal_init.lua'
local WAIT_MS = tonumber(vim.env.MOAT_WAIT_MS or '10000')

local Child = {}
Child.__index = Child

--- Starts a Neovim under test with MOAT_TEST_MODE=mode (and `extra` environment variables, which
--- reach the moat server it starts too).
local function spawn(mode, name, extra)
  local env = {
    MOAT_TEST_MODE = mode,
    MOAT_LOG_FILE = ('%s/%s.moat.log'):format(tmp, name),
    XDG_STATE_HOME = tmp .. '/state',
    XDG_CACHE_HOME = tmp .. '/cache',
    XDG_CONFIG_HOME = tmp .. '/config',
  }
  for k, v in pairs(extra or {}) do
    env[k] = v
  end
  local chan = vim.fn.jobstart({ nvim, '--embed', '--headless', '--clean', '-u', init }, {
    rpc = true,
    env = env,
    stderr_buffered = false,
  })
  assert(chan > 0, 'could not start ' .. nvim)
  local self = setmetatable({ chan = chan, log = env.MOAT_LOG_FILE }, Child)
  -- The first request waits for startup (init) to finish.
  self:lua('return 1')
  return self
end

function Child:lua(code, ...)
  return vim.rpcrequest(self.chan, 'nvim_exec_lua', code, { ... })
end

function Child:input(keys)
  return vim.rpcrequest(self.chan, 'nvim_input', keys)
end

function Child:cmd(c)
  return vim.rpcrequest(self.chan, 'nvim_command', c)
end

function Child:mode()
  return vim.rpcrequest(self.chan, 'nvim_get_mode').mode
end

function Child:close()
  pcall(vim.rpcrequest, self.chan, 'nvim_command', 'qa!')
  vim.wait(2000, function()
    return vim.fn.jobwait({ self.chan }, 0)[1] ~= -1
  end, 20)
  pcall(vim.fn.jobstop, self.chan)
end

local function wait_for(what, timeout, fn)
  local value
  local ok = vim.wait(timeout or WAIT_MS, function()
    value = fn()
    if value == vim.NIL then
      value = nil
    end
    return value ~= nil and value ~= false
  end, 20)
  if not ok then
    error(('timed out after %d ms waiting for %s'):format(timeout or WAIT_MS, what), 2)
  end
  return value
end

local function eq(expected, actual, what)
  if not vim.deep_equal(expected, actual) then
    error(('%s:\n  expected %s\n  actual   %s'):format(what, vim.inspect(expected), vim.inspect(actual)), 2)
  end
end

local function write_file(name, lines)
  local path = tmp .. '/' .. name
  vim.fn.writefile(lines, path)
  return path
end

-- Child-side snippets --------------------------------------------------------------------------

local ATTACHED_READY = [[
  local c = vim.lsp.get_clients({ name = 'moat', bufnr = 0 })[1]
  return c ~= nil and vim.g.moat_status == 'ready'
]]

--- The ghost text drawn by the plugin: { row, col, text } or nil.
local GHOST = [[
  local ns = ...
  ns = ns and vim.api.nvim_get_namespaces()[ns] or require('moat.ghost').ns
  if not ns then return nil end
  local marks = vim.api.nvim_buf_get_extmarks(0, ns, 0, -1, { details = true })
  local m = marks[1]
  if not m then return nil end
  local d = m[4]
  local parts = {}
  for _, chunk in ipairs(d.virt_text or {}) do parts[#parts + 1] = chunk[1] end
  local lines = { table.concat(parts) }
  for _, vl in ipairs(d.virt_lines or {}) do
    local p = {}
    for _, chunk in ipairs(vl) do p[#p + 1] = chunk[1] end
    lines[#lines + 1] = table.concat(p)
  end
  return { row = m[2], col = m[3], text = table.concat(lines, '\n'), count = #marks,
           hl = d.virt_text and d.virt_text[1] and d.virt_text[1][2],
           n_virt_lines = d.virt_lines and #d.virt_lines or 0 }
]]

--- What the server suggests at the cursor, asked directly (textDocument/inlineCompletion).
local SERVER_SUGGESTION = [[
  local c = vim.lsp.get_clients({ name = 'moat', bufnr = 0 })[1]
  local params = vim.lsp.util.make_position_params(0, c.offset_encoding)
  params.context = { triggerKind = 1 }
  local r, err = c:request_sync('textDocument/inlineCompletion', params, 8000, vim.api.nvim_get_current_buf())
  if not r then return { err = tostring(err) } end
  if r.err then return { err = vim.inspect(r.err) } end
  local items = r.result and (r.result.items or r.result) or {}
  local it = items[1]
  if not it then return { text = '' } end
  return { text = it.insertText, range = it.range, encoding = c.offset_encoding }
]]

--- Waits until moat is attached to the current buffer (its model may still be loading).
function Child:wait_attached()
  wait_for('moat to attach', WAIT_MS, function()
    return self:lua([[return vim.lsp.get_clients({ name = 'moat', bufnr = 0 })[1] ~= nil]])
  end)
end

function Child:wait_ready()
  local ok, err = pcall(wait_for, 'moat to attach and load its model', WAIT_MS, function()
    return self:lua(ATTACHED_READY)
  end)
  if not ok then
    local status = self:lua('return vim.g.moat_status')
    local log = vim.fn.filereadable(self.log) == 1 and vim.fn.readfile(self.log) or {}
    error(('%s (moat/status: %s)\nserver log:\n  %s'):format(err, tostring(status),
      table.concat(vim.list_slice(log, math.max(1, #log - 15)), '\n  ')), 0)
  end
end

local CURSOR = [[
  local c = vim.api.nvim_win_get_cursor(0)
  return { c[1] - 1, c[2] }
]]

local LINES = [[ return vim.api.nvim_buf_get_lines(0, 0, -1, false) ]]

local function split(s)
  return vim.split(s, '\n', { plain = true })
end

--- Opens `path`, waits for the server, puts the cursor on line `row` (0-based) and appends `typed`.
local function open_and_type(child, path, row, typed)
  child:cmd('edit ' .. vim.fn.fnameescape(path))
  child:wait_ready()
  child:lua('vim.api.nvim_win_set_cursor(0, { ..., 0 })', row + 1)
  child:input('A' .. typed)
end

local function uses_builtin(child)
  return child:lua([[return require('moat').uses_builtin()]])
end

--- Waits for ghost text, checks it is the server's suggestion, accepts with <Tab>, checks the buffer.
local function ghost_accept_flow(child, ns_name, path, original, row, typed)
  open_and_type(child, path, row, typed)
  local ghost = wait_for('ghost text', WAIT_MS, function()
    return child:lua(GHOST, ns_name)
  end)
  eq('i', child:mode(), 'mode while ghost text is shown')
  local cursor = child:lua(CURSOR)
  eq(cursor, { ghost.row, ghost.col }, 'ghost text position (= cursor)')
  local server = child:lua(SERVER_SUGGESTION)
  assert(not server.err, 'server error: ' .. tostring(server.err))
  assert(server.text ~= '', 'the server suggested nothing at the cursor')
  eq(server.text, ghost.text, 'ghost text vs the server suggestion')
  local nlines = #split(server.text)
  eq(nlines - 1, ghost.n_virt_lines, 'virt_lines count')

  -- Accept.
  child:input('<Tab>')
  local expected = vim.deepcopy(original)
  local line = expected[row + 1] .. typed
  local sug = split(server.text)
  expected[row + 1] = line .. sug[1]
  for i = 2, #sug do
    table.insert(expected, row + i, sug[i])
  end
  vim.wait(3000, function()
    return vim.deep_equal(child:lua(LINES), expected)
  end, 20)
  eq(expected, child:lua(LINES), 'buffer after accept')
  local end_row = row + #sug - 1
  local end_col = (#sug == 1 and #line or 0) + #sug[#sug]
  eq({ end_row, end_col }, child:lua(CURSOR), 'cursor after accept')
  eq('i', child:mode(), 'still in insert mode after accept')
  return server.text
end


--- Neovim's built-in LSP completion (`vim.lsp.completion`: what 0.11 offers without the plugin's
--- ghost text), enabled for the current buffer without autotrigger; 'completeopt' as its help
--- suggests (a menu even for one item, nothing selected).
local COMPLETION_ENABLE = [[
  vim.o.completeopt = 'menuone,noselect,popup'
  local c = vim.lsp.get_clients({ name = 'moat', bufnr = 0 })[1]
  vim.lsp.completion.enable(true, c.id, vim.api.nvim_get_current_buf(), { autotrigger = false })
]]

--- The completion menu: { selected, n, word } or nil while it is not shown.
local PUM = [[
  if vim.fn.pumvisible() == 0 then return nil end
  local info = vim.fn.complete_info({ 'items', 'selected' })
  return { selected = info.selected, n = #info.items, word = info.items[1] and info.items[1].word }
]]

--- Waits for the completion menu, selects its first item and accepts it with <C-y>.
local function accept_completion_item(child)
  local pum = wait_for('the completion menu', WAIT_MS, function()
    return child:lua(PUM)
  end)
  eq(1, pum.n, 'completion items')
  if pum.selected < 0 then
    child:input('<C-n>')
    wait_for('the first item selected', 2000, function()
      local p = child:lua(PUM)
      return p and p.selected == 0
    end)
  end
  child:input('<C-y>')
end

--- Waits for the buffer to be `expected`, then writes it and checks the file.
local function expect_buffer_and_file(child, path, expected, what)
  vim.wait(3000, function()
    return vim.deep_equal(child:lua(LINES), expected)
  end, 20)
  eq(expected, child:lua(LINES), what)
  child:cmd('write')
  eq(expected, vim.fn.readfile(path), 'the file written after ' .. what)
end

--- `original` with `typed` appended to line `row` (0-based) and then `text` inserted there.
local function with_suggestion(original, row, typed, text)
  local expected = vim.deepcopy(original)
  local sug = split(text)
  expected[row + 1] = expected[row + 1] .. typed .. sug[1]
  for i = 2, #sug do
    table.insert(expected, row + i, sug[i])
  end
  return expected
end

--- The model loads this much slower in the tests that type while it loads.
local LOAD_DELAY_MS = '2500'

-- Tests ----------------------------------------------------------------------------------------

local SINGLE = { 'import os', 'import sys', '', 'def main(argv):', '    path = os.path' }

local tests = {}

tests[#tests + 1] = {
  name = 'single-line ghost text: rendered as the server suggests, accepted with <Tab>',
  mode = 'plugin-extmarks',
  run = function(child)
    local path = write_file('single.py', SINGLE)
    local text = ghost_accept_flow(child, nil, path, SINGLE, 4, '.join(')
    assert(not text:find('\n'), 'expected a single-line suggestion, got ' .. vim.inspect(text))
  end,
}

tests[#tests + 1] = {
  name = 'multi-line ghost text: virt_text + virt_lines, accepted with <Tab>',
  mode = 'plugin-extmarks',
  run = function(child)
    local original = { 'if x:', '' }
    local path = write_file('multi.py', original)
    local text = ghost_accept_flow(child, nil, path, original, 1, '    ')
    assert(text:find('\n'), 'expected a multi-line suggestion, got ' .. vim.inspect(text))
  end,
}

tests[#tests + 1] = {
  name = 'clients started with vim.lsp.start (the Neovim 0.10 way) + settings update',
  mode = 'plugin-lsp-start',
  run = function(child)
    local path = write_file('legacy.py', SINGLE)
    ghost_accept_flow(child, nil, path, SINGLE, 4, '.join(')
    eq(false, child:lua([[return vim.lsp.config ~= nil and vim.lsp.config._configs.moat ~= nil]]),
      'vim.lsp.config not used')
    -- New settings reach the running server: disabling there stops suggestions.
    child:lua([[require('moat').update_settings({ enable = false })]])
    child:input('<Esc>o    x = os.path.join(')
    vim.wait(1500)
    eq(vim.NIL, child:lua(GHOST) or vim.NIL, 'ghost text with enable = false on the server')
    local server = child:lua(SERVER_SUGGESTION)
    eq('', server.text, 'server suggestion with enable = false')
    -- And back on: a suggestion comes again (so the check above was not vacuous).
    child:lua([[require('moat').update_settings({ enable = true })]])
    child:input('a')
    wait_for('ghost text after enable = true', WAIT_MS, function()
      return child:lua(GHOST)
    end)
  end,
}

tests[#tests + 1] = {
  name = 'type-through keeps the rest, other typing and <Esc> dismiss',
  mode = 'plugin-extmarks',
  run = function(child)
    local path = write_file('dismiss.py', SINGLE)
    open_and_type(child, path, 4, '.join(')
    local ghost = wait_for('ghost text', WAIT_MS, function()
      return child:lua(GHOST)
    end)
    assert(#ghost.text >= 2, 'suggestion too short for this test: ' .. vim.inspect(ghost.text))
    -- Slow the client down so that only the synchronous reaction to a keystroke is seen.
    child:lua([[require('moat').config.debounce_ms = 3000]])
    local first = ghost.text:sub(1, 1)
    child:input(first)
    local after = wait_for('ghost text after typing its first character', 2000, function()
      local g = child:lua(GHOST)
      return g and g.col == ghost.col + 1 and g
    end)
    eq(ghost.text:sub(2), after.text, 'ghost text after typing through one character')
    -- A character that is not the next one of the suggestion hides it.
    local next_char = ghost.text:sub(2, 2)
    local other = next_char == 'Q' and 'W' or 'Q'
    child:input(other)
    local gone = vim.wait(2000, function()
      return child:lua(GHOST) == vim.NIL
    end, 20)
    assert(gone, 'the ghost text stayed after typing something else: ' .. vim.inspect(child:lua(GHOST)))
    -- Back to a short debounce: a new suggestion comes, <Esc> hides it and leaves insert mode.
    child:lua([[require('moat').config.debounce_ms = 30]])
    child:input('<BS>')
    wait_for('a new ghost text', WAIT_MS, function()
      return child:lua(GHOST)
    end)
    child:input('<Esc>')
    wait_for('normal mode', 2000, function()
      return child:mode() == 'n'
    end)
    eq(vim.NIL, child:lua(GHOST) or vim.NIL, 'ghost text after <Esc>')
  end,
}

tests[#tests + 1] = {
  name = '<Tab> falls through to a normal <Tab> when nothing is shown (:Moat disable)',
  mode = 'plugin-extmarks',
  run = function(child)
    local path = write_file('fallback.py', { 'def f(n):', '    x = 1', '' })
    child:cmd('edit ' .. vim.fn.fnameescape(path))
    child:wait_ready()
    child:cmd('Moat disable')
    child:lua('vim.api.nvim_win_set_cursor(0, { 3, 0 })')
    child:input('A<Tab>x')
    wait_for('the typed x', 3000, function()
      return child:lua(LINES)[3]:find('x', 1, true)
    end)
    local line = child:lua(LINES)[3]
    assert(line:match('^%s+x$'), 'expected indentation then x, got ' .. vim.inspect(line))
    vim.wait(300)
    eq(vim.NIL, child:lua(GHOST) or vim.NIL, 'ghost text while disabled')
    child:cmd('Moat enable')
    child:input('<Esc>')
  end,
}

tests[#tests + 1] = {
  name = 'lsp/moat.lua with vim.lsp.enable("moat") attaches and answers (no setup())',
  mode = 'plain',
  run = function(child)
    if child:lua([[return vim.lsp.enable == nil]]) then
      error('SKIP: vim.lsp.enable needs Neovim 0.11+')
    end
    local path = write_file('plain.py', SINGLE)
    child:cmd('edit ' .. vim.fn.fnameescape(path))
    child:wait_ready()
    local info = child:lua([[
      local c = vim.lsp.get_clients({ name = 'moat', bufnr = 0 })[1]
      return { name = c.name, cmd = c.config.cmd, inline = c.server_capabilities.inlineCompletionProvider,
               loaded = package.loaded['moat'] ~= nil }
    ]])
    eq(true, info.inline, 'inlineCompletionProvider')
    eq(false, info.loaded, 'the plugin module was not loaded')
    child:lua('vim.api.nvim_win_set_cursor(0, { 5, 0 })')
    child:input('A.join(')
    wait_for('the typed text', 3000, function()
      return child:lua(LINES)[5] == '    path = os.path.join('
    end)
    local server = child:lua(SERVER_SUGGESTION)
    assert(not server.err, 'server error: ' .. tostring(server.err))
    assert(server.text ~= '', 'empty inline completion')
    local completion = child:lua([[
      local c = vim.lsp.get_clients({ name = 'moat', bufnr = 0 })[1]
      local params = vim.lsp.util.make_position_params(0, c.offset_encoding)
      local r = c:request_sync('textDocument/completion', params, 8000, vim.api.nvim_get_current_buf())
      return r and r.result
    ]])
    assert(completion and completion.items and completion.items[1], 'no completion item')
    -- The item replaces the identifier before the cursor (none after "(") with it + the suggestion.
    eq(server.text, completion.items[1].textEdit.newText, 'completion item textEdit')
    eq(server.range, completion.items[1].textEdit.range, 'completion item range')
  end,
}

tests[#tests + 1] = {
  name = ':checkhealth moat reports no errors',
  mode = 'plugin',
  run = function(child)
    local path = write_file('health.py', SINGLE)
    child:cmd('edit ' .. vim.fn.fnameescape(path))
    child:wait_ready()
    child:cmd('checkhealth moat')
    local lines = child:lua(LINES)
    local text = table.concat(lines, '\n')
    assert(text:find('moat doctor` passed', 1, true), 'no doctor line in:\n' .. text)
    assert(text:find('ready', 1, true), 'no ready client in:\n' .. text)
    assert(not text:find('ERROR'), 'errors in :checkhealth moat:\n' .. text)
  end,
}

tests[#tests + 1] = {
  name = 'Neovim 0.12 built-in vim.lsp.inline_completion: ghost text and <Tab> accept',
  mode = 'plugin',
  run = function(child)
    if not uses_builtin(child) then
      error('SKIP: this Neovim has no vim.lsp.inline_completion (needs 0.12+)')
    end
    local path = write_file('builtin.py', SINGLE)
    ghost_accept_flow(child, 'nvim.lsp.inline_completion', path, SINGLE, 4, '.join(')
  end,
}

tests[#tests + 1] = {
  name = 'typing while the model loads: ghost text comes when it is ready, <Tab> accepts, file saved',
  mode = 'plugin-extmarks',
  env = { MOAT_TEST_LOAD_DELAY_MS = LOAD_DELAY_MS },
  run = function(child)
    local path = write_file('loading.py', SINGLE)
    child:cmd('edit ' .. vim.fn.fnameescape(path))
    child:wait_attached()
    child:lua('vim.api.nvim_win_set_cursor(0, { 5, 0 })')
    child:input('A.jo')
    vim.wait(100)
    child:input('in(')
    wait_for('the typed text', 3000, function()
      return child:lua(LINES)[5] == '    path = os.path.join('
    end)
    local status = child:lua('return vim.g.moat_status')
    assert(status ~= 'ready', 'the model was ready before the typing ended (status ' .. tostring(status) .. ')')
    -- No further keystroke: the request made while loading is answered once the model is ready.
    local ghost = wait_for('ghost text after the model loaded', WAIT_MS, function()
      return child:lua(GHOST)
    end)
    eq('ready', child:lua('return vim.g.moat_status'), 'status once ghost text shows')
    local server = child:lua(SERVER_SUGGESTION)
    eq(server.text, ghost.text, 'ghost text vs the server suggestion')
    child:input('<Tab>')
    expect_buffer_and_file(child, path, with_suggestion(SINGLE, 4, '.join(', server.text), 'accept')
  end,
}

tests[#tests + 1] = {
  name = 'typing in the gap between request and answer: no stale ghost text, <Tab> accepts the fresh one',
  mode = 'plugin-extmarks',
  run = function(child)
    local path = write_file('gap.py', SINGLE)
    child:cmd('edit ' .. vim.fn.fnameescape(path))
    child:wait_ready()
    -- A slow server (long debounce) opens a gap between each request and its answer.
    child:lua([[require('moat').update_settings({ debounceMs = 400 })]])
    child:lua('vim.api.nvim_win_set_cursor(0, { 5, 0 })')
    child:input('A.jo')
    vim.wait(150) -- the plugin has asked (30 ms debounce); the server has not answered
    child:input('in(')
    local ghost = wait_for('ghost text', WAIT_MS, function()
      return child:lua(GHOST)
    end)
    eq({ 4, #'    path = os.path.join(' }, { ghost.row, ghost.col }, 'ghost text at the cursor')
    local server = child:lua(SERVER_SUGGESTION)
    eq(server.text, ghost.text, 'ghost text is the suggestion for the text as typed')
    child:input('<Tab>')
    expect_buffer_and_file(child, path, with_suggestion(SINGLE, 4, '.join(', server.text), 'accept')
  end,
}

local ADD = { 'def add(a, b):', '    return' }

tests[#tests + 1] = {
  name = 'vim.lsp.completion (0.11, no plugin): the item is accepted whole, spaces included',
  mode = 'plain',
  run = function(child)
    if child:lua([[return vim.lsp.completion == nil or vim.lsp.enable == nil]]) then
      error('SKIP: vim.lsp.completion needs Neovim 0.11+')
    end
    local path = write_file('item.py', ADD)
    child:cmd('edit ' .. vim.fn.fnameescape(path))
    child:wait_ready()
    child:lua(COMPLETION_ENABLE)
    child:lua('vim.api.nvim_win_set_cursor(0, { 2, 0 })')
    child:input('A a')
    wait_for('the typed text', 3000, function()
      return child:lua(LINES)[2] == '    return a'
    end)
    local server = child:lua(SERVER_SUGGESTION)
    assert(server.text:find('%s'), 'the test needs a suggestion with whitespace: ' .. vim.inspect(server.text))
    child:input('<Cmd>lua vim.lsp.completion.get()<CR>')
    accept_completion_item(child)
    expect_buffer_and_file(child, path, with_suggestion(ADD, 1, ' a', server.text), 'accepting the item')
    eq('i', child:mode(), 'still in insert mode')
  end,
}

tests[#tests + 1] = {
  name = 'vim.lsp.completion (0.11, no plugin): a multi-line item is accepted whole',
  mode = 'plain',
  run = function(child)
    if child:lua([[return vim.lsp.completion == nil or vim.lsp.enable == nil]]) then
      error('SKIP: vim.lsp.completion needs Neovim 0.11+')
    end
    local original = { 'if x:', '' }
    local path = write_file('item_multi.py', original)
    child:cmd('edit ' .. vim.fn.fnameescape(path))
    child:wait_ready()
    child:lua(COMPLETION_ENABLE)
    child:lua('vim.api.nvim_win_set_cursor(0, { 2, 0 })')
    child:input('A    ')
    wait_for('the typed text', 3000, function()
      return child:lua(LINES)[2] == '    '
    end)
    local server = child:lua(SERVER_SUGGESTION)
    assert(server.text:find('\n'), 'expected a multi-line suggestion, got ' .. vim.inspect(server.text))
    child:input('<Cmd>lua vim.lsp.completion.get()<CR>')
    accept_completion_item(child)
    expect_buffer_and_file(child, path, with_suggestion(original, 1, '    ', server.text), 'accepting the item')
  end,
}

tests[#tests + 1] = {
  name = 'vim.lsp.completion (0.11, no plugin): asked while the model loads, typing on, accepted once ready',
  mode = 'plain',
  env = { MOAT_TEST_LOAD_DELAY_MS = LOAD_DELAY_MS },
  run = function(child)
    if child:lua([[return vim.lsp.completion == nil or vim.lsp.enable == nil]]) then
      error('SKIP: vim.lsp.completion needs Neovim 0.11+')
    end
    local path = write_file('item_loading.py', SINGLE)
    child:cmd('edit ' .. vim.fn.fnameescape(path))
    child:wait_attached()
    child:lua(COMPLETION_ENABLE)
    child:lua('vim.api.nvim_win_set_cursor(0, { 5, 0 })')
    child:input('A.jo')
    wait_for('the typed text', 3000, function()
      return child:lua(LINES)[5] == '    path = os.path.jo'
    end)
    child:input('<Cmd>lua vim.lsp.completion.get()<CR>')
    vim.wait(100)
    child:input('in')
    wait_for('the typed text', 3000, function()
      return child:lua(LINES)[5] == '    path = os.path.join'
    end)
    local status = child:lua('return vim.g.moat_status')
    assert(status ~= 'ready', 'the model was ready before the typing ended (status ' .. tostring(status) .. ')')
    local pum = wait_for('the completion menu once the model is ready', WAIT_MS, function()
      return child:lua(PUM)
    end)
    assert(pum.n == 1, 'one item: ' .. vim.inspect(pum))
    local server = child:lua(SERVER_SUGGESTION)
    accept_completion_item(child)
    expect_buffer_and_file(child, path, with_suggestion(SINGLE, 4, '.join', server.text), 'accepting the item')
  end,
}

tests[#tests + 1] = {
  name = 'Neovim 0.12 built-in inline completion: typing while the model loads, ghost text once ready, <Tab>',
  mode = 'plugin',
  env = { MOAT_TEST_LOAD_DELAY_MS = LOAD_DELAY_MS },
  run = function(child)
    if not uses_builtin(child) then
      error('SKIP: this Neovim has no vim.lsp.inline_completion (needs 0.12+)')
    end
    local path = write_file('builtin_loading.py', SINGLE)
    child:cmd('edit ' .. vim.fn.fnameescape(path))
    child:wait_attached()
    child:lua('vim.api.nvim_win_set_cursor(0, { 5, 0 })')
    child:input('A.join(')
    wait_for('the typed text', 3000, function()
      return child:lua(LINES)[5] == '    path = os.path.join('
    end)
    local status = child:lua('return vim.g.moat_status')
    assert(status ~= 'ready', 'the model was ready before the typing ended (status ' .. tostring(status) .. ')')
    local ghost = wait_for('ghost text once the model is ready', WAIT_MS, function()
      return child:lua(GHOST, 'nvim.lsp.inline_completion')
    end)
    local server = child:lua(SERVER_SUGGESTION)
    eq(server.text, ghost.text, 'ghost text vs the server suggestion')
    child:input('<Tab>')
    expect_buffer_and_file(child, path, with_suggestion(SINGLE, 4, '.join(', server.text), 'accept')
  end,
}

-- Runner ---------------------------------------------------------------------------------------

-- Feedback (issue 15) lives in its own file and uses the helpers above.
local feedback_tests = dofile(vim.env.MOAT_NVIM_ROOT .. '/test/feedback.lua')({
  tmp = tmp, WAIT_MS = WAIT_MS, wait_for = wait_for, eq = eq, write_file = write_file,
  ghost_accept_flow = ghost_accept_flow, accept_completion_item = accept_completion_item,
  COMPLETION_ENABLE = COMPLETION_ENABLE, LINES = LINES, SINGLE = SINGLE, ADD = ADD,
})
for _, t in ipairs(feedback_tests) do
  tests[#tests + 1] = t
end

-- Code actions (issue 14), likewise.
local code_action_tests = dofile(vim.env.MOAT_NVIM_ROOT .. '/test/code_actions.lua')({
  WAIT_MS = WAIT_MS, wait_for = wait_for, eq = eq, write_file = write_file, LINES = LINES,
})
for _, t in ipairs(code_action_tests) do
  tests[#tests + 1] = t
end

local only = _G.arg or {}
local passed, failed, skipped = 0, 0, 0
local version = vim.fn.system({ nvim, '--version' }):match('NVIM v[^\n]*') or nvim
io.stdout:write(('# Neovim under test: %s\n'):format(version))
for _, t in ipairs(tests) do
  local selected = #only == 0
  for _, pat in ipairs(only) do
    if t.name:find(pat, 1, true) then
      selected = true
    end
  end
  if selected then
    local start = vim.uv.hrtime()
    local child
    local ok, err = pcall(function()
      child = spawn(t.mode, ('t%d'):format(passed + failed + skipped + 1), t.env)
      t.run(child)
    end)
    if child then
      child:close()
    end
    local secs = (vim.uv.hrtime() - start) / 1e9
    if ok then
      passed = passed + 1
      io.stdout:write(('ok - %s (%.1f s)\n'):format(t.name, secs))
    elseif tostring(err):find('SKIP: ', 1, true) then
      skipped = skipped + 1
      io.stdout:write(('skip - %s: %s\n'):format(t.name, tostring(err):match('SKIP: (.*)')))
    else
      failed = failed + 1
      io.stdout:write(('not ok - %s (%.1f s): %s\n'):format(t.name, secs, tostring(err)))
    end
    io.stdout:flush()
  end
end
io.stdout:write(('# neovim: %d passed, %d failed, %d skipped\n'):format(passed, failed, skipped))
os.exit(failed == 0 and 0 or 1)
