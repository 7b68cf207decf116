-- Headless Neovim (0.7+) LSP round trip for tests/clients/test_neovim.py.
--   nvim --headless --clean -i NONE -n -u nvim_probe.lua
-- env LLMREF_PROBE_SPEC: a JSON file {file, root, cmd, init_options, probes: [...]};
-- each probe is {name, method: "hover"|"completion"|"definition"|"symbol", find, line?,
-- after?, query?, until?}: the cursor goes on the first byte of `find` (after it, with
-- `after`) on line `line` (1-based), or on the first line containing it. "definition" runs
-- the editor's own go-to-definition (vim.lsp.buf.definition) and "symbol" asks
-- workspace/symbol for `query` and jumps to the first result (as a picker does); both record
-- where the editor landed (file, cursor, that line's text). `until`: retry (up to 20 s) until
-- the result's text contains it (the team's concept map loads in the background).
-- Results (JSON) go to $LLMREF_PROBE_OUT; exit code 0 = ran, 1 = error (in the results'
-- "error"), 2 = nowhere to write results.
local out_path = os.getenv('LLMREF_PROBE_OUT')
if not out_path then vim.cmd('cquit! 2') end
local now = vim.loop.hrtime
local t0 = now()
local function ms(since) return math.floor((now() - since) / 1e6) end

local v = vim.version()
local result = { nvim = string.format('%d.%d.%d', v.major, v.minor, v.patch), probes = {} }

local function finish(code)
  result.total_ms = ms(t0)
  vim.fn.writefile({ vim.fn.json_encode(result) }, out_path)
  vim.cmd(code == 0 and 'qall!' or ('cquit! ' .. code))
end

local function request(buf, method, params, timeout)
  local responses, err = vim.lsp.buf_request_sync(buf, method, params, timeout)
  if not responses then error(method .. ': ' .. tostring(err)) end
  for _, r in pairs(responses) do
    if r.err or r.error then error(method .. ' error: ' .. vim.inspect(r.err or r.error)) end
    return r.result
  end
  return nil
end

local probe_until = nil

local function place_cursor(buf, probe)
  local lines = vim.api.nvim_buf_get_lines(buf, 0, -1, false)
  local lnum = probe.line
  if lnum == nil then
    for i, l in ipairs(lines) do
      if l:find(probe.find, 1, true) then lnum = i; break end
    end
  end
  assert(lnum, 'no line contains ' .. probe.find)
  local s, e = lines[lnum]:find(probe.find, 1, true)
  assert(s, string.format('line %d does not contain %s', lnum, probe.find))
  local col = probe.after and e or (s - 1) -- 0-based byte column
  vim.api.nvim_win_set_cursor(0, { lnum, col })
  return lnum, col, lines[lnum]
end

local ok, err = pcall(function()
  local spec_path = assert(os.getenv('LLMREF_PROBE_SPEC'), 'LLMREF_PROBE_SPEC not set')
  local spec = vim.fn.json_decode(table.concat(vim.fn.readfile(spec_path), '\n'))
  vim.cmd('filetype on') -- a -u script runs before Neovim turns detection on itself
  -- ftplugin/python.vim asks the python3 provider for pynvim (~1 s); we don't need it
  vim.g.loaded_python3_provider = 0
  vim.cmd('edit ' .. vim.fn.fnameescape(spec.file))
  local buf = vim.api.nvim_get_current_buf()
  result.filetype = vim.bo[buf].filetype
  local client_id = vim.lsp.start_client({
    name = 'llmref',
    cmd = spec.cmd,
    root_dir = spec.root,
    init_options = spec.init_options,
  })
  assert(client_id, 'start_client failed')
  vim.lsp.buf_attach_client(buf, client_id)
  local inited = vim.wait(15000, function()
    local c = vim.lsp.get_client_by_id(client_id)
    return c ~= nil and c.initialized == true
  end, 20)
  assert(inited, 'server did not initialize within 15s')
  result.initialize_ms = ms(t0)
  local encoding = vim.lsp.get_client_by_id(client_id).offset_encoding or 'utf-16'
  result.offset_encoding = encoding
  vim.wait(100) -- didOpen goes out right after initialized

  local function landed(out)
    local cur = vim.api.nvim_get_current_buf()
    local pos = vim.api.nvim_win_get_cursor(0)
    out.landed = {
      file = vim.api.nvim_buf_get_name(cur),
      cursor = pos,
      text = vim.api.nvim_buf_get_lines(cur, pos[1] - 1, pos[1], false)[1],
      lines = vim.api.nvim_buf_line_count(cur),
      readonly = vim.bo[cur].readonly,
    }
  end

  local function waiting(out, started)
    if not probe_until then return false end
    local text = vim.fn.json_encode(out.result or vim.NIL)
    return text:find(probe_until, 1, true) == nil and ms(started) <= 20000
  end

  for _, probe in ipairs(spec.probes) do
    local started = now()
    probe_until = probe['until']
    vim.api.nvim_set_current_buf(buf) -- a jump of the probe before may have left it
    if probe.method == 'symbol' then
      local out = { name = probe.name, tries = 0 }
      repeat
        out.tries = out.tries + 1
        out.result = request(buf, 'workspace/symbol', { query = probe.query }, 10000)
        if not waiting(out, started) then break end
        vim.wait(300)
      until false
      if out.result and out.result[1] then
        vim.lsp.util.jump_to_location(out.result[1].location, encoding)
        landed(out)
      end
      out.ms = ms(started)
      table.insert(result.probes, out)
      goto continue
    end
    local lnum, col, line = place_cursor(buf, probe)
    -- the encoding the server chose: utf-16 with Neovim 0.7 (which offers no other);
    -- cursor columns are bytes, LSP columns are in these units
    local params = vim.lsp.util.make_position_params(0, encoding)
    if probe.after and col >= #line then
      -- end of line: where the insert-mode cursor would be (normal mode stops on the last char)
      params.position.character = vim.lsp.util.character_offset(buf, lnum - 1, col, encoding)
    end
    local out = { name = probe.name, cursor = { lnum, col }, position = params.position, tries = 0 }
    if probe.method == 'hover' then
      -- the index loads in the background: retry while the card says so (up to 20 s)
      repeat
        out.tries = out.tries + 1
        out.result = request(buf, 'textDocument/hover', params, 10000)
        local value = out.result and out.result.contents and out.result.contents.value or ''
        local loading = value:find('Indexing the corpus', 1, true) ~= nil
        if (not loading and not waiting(out, started)) or ms(started) > 20000 then break end
        vim.wait(200)
      until false
    elseif probe.method == 'completion' then
      params.context = { triggerKind = 1 }
      out.tries = 1
      local res = request(buf, 'textDocument/completion', params, 10000)
      local items = res and (res.items or res) or {}
      out.labels = vim.tbl_map(function(i) return i.label end, items)
      out.items = items
    elseif probe.method == 'definition' then
      repeat -- the answer the editor jumps to, until it is the one awaited
        out.tries = out.tries + 1
        out.result = request(buf, 'textDocument/definition', params, 10000)
        if not waiting(out, started) then break end
        vim.wait(300)
      until false
      vim.lsp.buf.definition() -- the editor's own jump, as `gd` mapped to it does
      vim.wait(5000, function() return vim.api.nvim_get_current_buf() ~= buf end, 20)
      landed(out)
    else
      error('unknown method ' .. tostring(probe.method))
    end
    out.ms = ms(started)
    table.insert(result.probes, out)
    ::continue::
  end

  vim.lsp.stop_client(client_id)
  vim.wait(3000, function() return vim.lsp.get_client_by_id(client_id) == nil end, 20)
end)
if not ok then result.error = tostring(err); finish(1) else finish(0) end
