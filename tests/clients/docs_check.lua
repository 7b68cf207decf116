-- Checks a Neovim config from docs/editors.md the way a user meets it: the config is the
-- -u file, this runs after it (-c 'luafile docs_check.lua'), opens files, waits for the
-- `llmref` client, presses K and reads the hover float, then runs llmref.search.
-- env LLMREF_PROBE_SPEC: {files: [{file, find, line}], search}; results to $LLMREF_PROBE_OUT.
local out_path = os.getenv('LLMREF_PROBE_OUT')
if not out_path then vim.cmd('cquit! 2') end
local v = vim.version()
local result = { nvim = string.format('%d.%d.%d', v.major, v.minor, v.patch), files = {} }

local function llmref_client(buf)
  local clients = vim.lsp.get_clients and vim.lsp.get_clients({ bufnr = buf })
    or vim.tbl_values(vim.lsp.buf_get_clients(buf))
  for _, c in ipairs(clients) do
    if c.name == 'llmref' then return c end
  end
end

local function floats()
  local wins = {}
  for _, w in ipairs(vim.api.nvim_list_wins()) do
    if vim.api.nvim_win_get_config(w).relative ~= '' then table.insert(wins, w) end
  end
  return wins
end

local function press_k()
  -- the index may still be loading: press K again while the card says so (up to 20 s)
  local deadline = vim.loop.now() + 20000
  local text
  repeat
    for _, w in ipairs(floats()) do vim.api.nvim_win_close(w, true) end
    text = nil
    vim.api.nvim_feedkeys('K', 'x', false)
    vim.wait(3000, function()
      local w = floats()[1]
      if w then
        local lines = vim.api.nvim_buf_get_lines(vim.api.nvim_win_get_buf(w), 0, -1, false)
        text = table.concat(lines, '\n')
      end
      return text ~= nil
    end, 20)
  until (text and not text:find('Indexing the corpus', 1, true)) or vim.loop.now() > deadline
  for _, w in ipairs(floats()) do vim.api.nvim_win_close(w, true) end
  return text
end

local ok, err = pcall(function()
  local spec = vim.fn.json_decode(table.concat(vim.fn.readfile(os.getenv('LLMREF_PROBE_SPEC')), '\n'))
  for _, f in ipairs(spec.files) do
    vim.cmd('edit ' .. vim.fn.fnameescape(f.file))
    local buf = vim.api.nvim_get_current_buf()
    local attached = vim.wait(15000, function()
      local c = llmref_client(buf)
      return c ~= nil and c.initialized ~= false
    end, 20)
    local c = llmref_client(buf)
    local r = { file = f.file, filetype = vim.bo[buf].filetype, attached = attached,
                omnifunc = vim.bo[buf].omnifunc }
    if c then
      r.client_id, r.root_dir = c.id, c.config.root_dir
      local line = vim.api.nvim_buf_get_lines(buf, f.line - 1, f.line, false)[1]
      vim.api.nvim_win_set_cursor(0, { f.line, assert(line:find(f.find, 1, true)) - 1 })
      r.hover = press_k()
    end
    table.insert(result.files, r)
  end
  local responses = vim.lsp.buf_request_sync(0, 'workspace/executeCommand',
    { command = 'llmref.search', arguments = { spec.search } }, 10000) or {}
  for _, x in pairs(responses) do
    result.search = x.result
    if x.err or x.error then error(vim.inspect(x.err or x.error)) end
  end
end)
if not ok then result.error = tostring(err) end
vim.fn.writefile({ vim.fn.json_encode(result) }, out_path)
vim.cmd(ok and 'qall!' or 'cquit! 1')
