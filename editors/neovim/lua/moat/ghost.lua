--- Ghost text for Neovim 0.10 / 0.11 (no built-in inline completion UI): asks the server for
--- `textDocument/inlineCompletion` after a pause in typing and draws the answer with an extmark
--- (`virt_text` inline at the cursor for the first line, `virt_lines` below for the others).
---
--- * TextChangedI / CursorMovedI / InsertEnter: (re)start the debounce timer, cancel the request
---   in flight; typing that matches the shown suggestion keeps the rest of it on screen.
--- * Any other edit, cursor move, <Esc>, leaving insert mode or the buffer: hide it.
--- * accept(): inserts it (nvim_buf_set_text), puts the cursor after it and runs the item's
---   command (`moat.suggestionAccepted`: the server records the acceptance, docs/feedback.md).
local M = {}

local api = vim.api
local uv = vim.uv or vim.loop

M.ns = api.nvim_create_namespace('moat.ghost')

---@class moat.Shown
---@field row integer 0-based line of the cursor
---@field col integer byte column of the cursor
---@field end_col integer byte column where the replaced text ends (>= col, same line)
---@field lines string[] the suggestion, split into lines
---@field after string the line's text after end_col when it was shown
---@field extmark integer
---@field command? table the item's command, run on accept
---@field client_id integer

---@class moat.BufState
---@field bufnr integer
---@field client_id integer
---@field timer? uv.uv_timer_t
---@field seq integer
---@field pending? { client: table, id: integer }
---@field shown? moat.Shown

---@type table<integer, moat.BufState>
local states = {}

local has_011 = vim.fn.has('nvim-0.11') == 1

local function cfg()
  return require('moat').config
end

local function enabled()
  return require('moat').enabled
end

local function in_insert()
  local mode = api.nvim_get_mode().mode
  return mode:sub(1, 1) == 'i'
end

local function client_request(client, method, params, handler, bufnr)
  if has_011 then
    return client:request(method, params, handler, bufnr)
  end
  return client.request(method, params, handler, bufnr)
end

local function client_cancel(client, id)
  if has_011 then
    return client:cancel_request(id)
  end
  return client.cancel_request(id)
end

--- Byte column of an LSP position on `line` (text of that line).
local function byte_col(line, character, encoding)
  if encoding == 'utf-8' then
    return math.min(character, #line)
  end
  local ok, col
  if has_011 then
    ok, col = pcall(vim.str_byteindex, line, encoding, character, false)
  else
    ok, col = pcall(vim.str_byteindex, line, character, encoding == 'utf-16')
  end
  return ok and col or #line
end

local function stop_timer(s)
  if s.timer then
    s.timer:stop()
    if not s.timer:is_closing() then
      s.timer:close()
    end
    s.timer = nil
  end
end

local function cancel_pending(s)
  s.seq = s.seq + 1
  local pending = s.pending
  s.pending = nil
  if pending then
    pcall(client_cancel, pending.client, pending.id)
  end
end

local function hide(s)
  if s.shown then
    pcall(api.nvim_buf_del_extmark, s.bufnr, M.ns, s.shown.extmark)
    s.shown = nil
  end
end

local function draw(s)
  local shown = s.shown
  local hl = cfg().hl_group or 'MoatGhost'
  local virt_lines = {}
  for i = 2, #shown.lines do
    virt_lines[#virt_lines + 1] = { { shown.lines[i], hl } }
  end
  local opts = {
    virt_text = { { shown.lines[1], hl } },
    virt_text_pos = 'inline',
    hl_mode = 'combine',
    right_gravity = false,
  }
  if #virt_lines > 0 then
    opts.virt_lines = virt_lines
  end
  if shown.extmark then
    opts.id = shown.extmark
  end
  shown.extmark = api.nvim_buf_set_extmark(s.bufnr, M.ns, shown.row, shown.col, opts)
end

--- After an edit: if the user typed the start of the suggestion, show the rest; else hide it.
local function type_through(s)
  local shown = s.shown
  if not shown then
    return false
  end
  local win = api.nvim_get_current_win()
  if api.nvim_win_get_buf(win) ~= s.bufnr then
    return false
  end
  local cursor = api.nvim_win_get_cursor(win)
  local row, col = cursor[1] - 1, cursor[2]
  if row ~= shown.row or col < shown.col then
    return false
  end
  local line = api.nvim_buf_get_lines(s.bufnr, row, row + 1, false)[1] or ''
  local typed = line:sub(shown.col + 1, col)
  local first = shown.lines[1]
  if line:sub(col + 1) ~= shown.after or first:sub(1, #typed) ~= typed then
    return false
  end
  if typed == '' then
    return true
  end
  if #typed == #first and #shown.lines == 1 then
    return false -- typed all of it
  end
  shown.lines[1] = first:sub(#typed + 1)
  shown.col = col
  shown.end_col = col
  draw(s)
  return true
end

local function suggestion_text(item)
  local text = item.insertText
  if type(text) == 'table' then
    text = text.value -- a snippet: shown and inserted as plain text
  end
  if type(text) ~= 'string' then
    return nil
  end
  return (text:gsub('\r\n', '\n'))
end

--- Shows `item` if the buffer and cursor are still where the request was made.
local function show(s, item, client, req)
  local text = suggestion_text(item)
  if not text or text == '' then
    return
  end
  local row, col = req.row, req.col
  local line = api.nvim_buf_get_lines(s.bufnr, row, row + 1, false)[1] or ''
  local end_col = col
  if item.range then
    local start, finish = item.range.start, item.range['end']
    if start.line ~= row or finish.line ~= row then
      return -- only edits of the cursor's line are drawn
    end
    local enc = client.offset_encoding or 'utf-16'
    local start_col = byte_col(line, start.character, enc)
    end_col = math.max(col, byte_col(line, finish.character, enc))
    if start_col < col then
      -- The item repeats what was typed since start_col: show only the rest.
      local typed = line:sub(start_col + 1, col)
      if text:sub(1, #typed) ~= typed then
        return
      end
      text = text:sub(#typed + 1)
    elseif start_col > col then
      return
    end
  end
  if text == '' then
    return
  end
  hide(s)
  s.shown = {
    row = row,
    col = col,
    end_col = end_col,
    lines = vim.split(text, '\n', { plain = true }),
    after = line:sub(end_col + 1),
    command = item.command,
    client_id = client.id,
  }
  draw(s)
end

local function request(s)
  if not enabled() or not in_insert() then
    return
  end
  local win = api.nvim_get_current_win()
  if api.nvim_win_get_buf(win) ~= s.bufnr then
    return
  end
  local client = vim.lsp.get_client_by_id(s.client_id)
  if not client or (client.is_stopped and client:is_stopped()) then
    return
  end
  cancel_pending(s)
  local seq = s.seq
  local cursor = api.nvim_win_get_cursor(win)
  local req = {
    row = cursor[1] - 1,
    col = cursor[2],
    tick = api.nvim_buf_get_changedtick(s.bufnr),
  }
  local params = vim.lsp.util.make_position_params(win, client.offset_encoding or 'utf-16')
  params.context = { triggerKind = 2 } -- Automatic
  local ok, id = client_request(client, 'textDocument/inlineCompletion', params, function(err, result)
    if seq ~= s.seq then
      return -- superseded
    end
    s.pending = nil
    if err or type(result) ~= 'table' or not enabled() or not in_insert() then
      return
    end
    if api.nvim_get_current_buf() ~= s.bufnr then
      return
    end
    local now = api.nvim_win_get_cursor(0)
    if
      api.nvim_buf_get_changedtick(s.bufnr) ~= req.tick
      or now[1] - 1 ~= req.row
      or now[2] ~= req.col
    then
      return -- the buffer moved on; a newer request is on its way
    end
    local items = result.items or result
    for _, item in ipairs(items) do
      local text = suggestion_text(item)
      if text and text ~= '' then
        show(s, item, client, req)
        return
      end
    end
  end, s.bufnr)
  if ok and id then
    s.pending = { client = client, id = id }
  end
end

local function schedule_request(s)
  stop_timer(s)
  if not enabled() then
    return
  end
  local timer = uv.new_timer()
  s.timer = timer
  timer:start(
    math.max(0, cfg().debounce_ms or 75),
    0,
    vim.schedule_wrap(function()
      if s.timer == timer then
        stop_timer(s)
        if states[s.bufnr] == s then
          request(s)
        end
      end
    end)
  )
end

local function on_edit(s)
  if s.shown and not type_through(s) then
    hide(s)
  end
  cancel_pending(s)
  schedule_request(s)
end

local function on_leave(s)
  stop_timer(s)
  cancel_pending(s)
  hide(s)
end

--- Starts ghost text for `bufnr` served by `client`.
function M.attach(bufnr, client)
  local s = states[bufnr]
  if s then
    s.client_id = client.id
    return
  end
  s = { bufnr = bufnr, client_id = client.id, seq = 0 }
  states[bufnr] = s
  local group = api.nvim_create_augroup('moat.ghost.' .. bufnr, { clear = true })
  api.nvim_create_autocmd({ 'TextChangedI', 'CursorMovedI', 'InsertEnter' }, {
    group = group,
    buffer = bufnr,
    callback = function()
      on_edit(s)
    end,
  })
  api.nvim_create_autocmd({ 'InsertLeave', 'BufLeave', 'WinLeave' }, {
    group = group,
    buffer = bufnr,
    callback = function()
      on_leave(s)
    end,
  })
  api.nvim_create_autocmd({ 'BufUnload', 'BufWipeout' }, {
    group = group,
    buffer = bufnr,
    callback = function()
      M.detach(bufnr)
    end,
  })
  api.nvim_create_autocmd('LspDetach', {
    group = group,
    buffer = bufnr,
    callback = function(args)
      if args.data and args.data.client_id == s.client_id then
        M.detach(bufnr)
      end
    end,
  })
end

function M.detach(bufnr)
  local s = states[bufnr]
  if not s then
    return
  end
  on_leave(s)
  states[bufnr] = nil
  pcall(api.nvim_del_augroup_by_name, 'moat.ghost.' .. bufnr)
end

--- The model became ready: ask again where the user is typing.
function M.on_ready(client_id)
  local s = states[api.nvim_get_current_buf()]
  if s and s.client_id == client_id and in_insert() and not s.shown then
    schedule_request(s)
  end
end

--- The suggestion shown in `bufnr` (default: current), or nil.
function M.current(bufnr)
  local s = states[bufnr or api.nvim_get_current_buf()]
  if s and s.shown then
    return { row = s.shown.row, col = s.shown.col, text = table.concat(s.shown.lines, '\n') }
  end
  return nil
end

function M.visible(bufnr)
  return M.current(bufnr) ~= nil
end

--- Runs the accepted item's command, as Neovim's own completion does after inserting an item:
--- the server learns the suggestion was accepted (feedback, docs/feedback.md).
local function report_accepted(shown, bufnr)
  if type(shown.command) ~= 'table' or type(shown.command.command) ~= 'string' then
    return
  end
  local client = vim.lsp.get_client_by_id(shown.client_id)
  if not client then
    return
  end
  if has_011 then
    client:exec_cmd(shown.command, { bufnr = bufnr })
  else
    local params = { command = shown.command.command, arguments = shown.command.arguments }
    client.request('workspace/executeCommand', params, function() end, bufnr)
  end
end

--- Inserts the shown suggestion; false when none is shown.
function M.accept()
  local bufnr = api.nvim_get_current_buf()
  local s = states[bufnr]
  if not s or not s.shown then
    return false
  end
  local shown = s.shown
  hide(s)
  stop_timer(s)
  cancel_pending(s)
  api.nvim_buf_set_text(bufnr, shown.row, shown.col, shown.row, shown.end_col, shown.lines)
  local last = shown.lines[#shown.lines]
  local row = shown.row + #shown.lines -- 1-based row of the last inserted line
  local col = (#shown.lines == 1 and shown.col or 0) + #last
  api.nvim_win_set_cursor(0, { row, col })
  report_accepted(shown, bufnr)
  return true
end

--- Hides the shown suggestion (until the next keystroke); false when none is shown.
function M.dismiss()
  local s = states[api.nvim_get_current_buf()]
  if not s or not s.shown then
    return false
  end
  on_leave(s)
  return true
end

function M.dismiss_all()
  for _, s in pairs(states) do
    on_leave(s)
  end
end

return M
