--- ckfb.task: coroutine tasks on the one event loop (host/loop.c).
-- Inside a task, a call that waits (a process, an HTTP request, a sleep)
-- yields and other tasks run; outside one (a plain script, a hook) it runs
-- the loop itself until its own operation is done.
--
-- Limits (Lua's, not ckfb's): no waiting at a module's top level (require
-- runs it without a continuation), in __gc, or inside callbacks of C
-- functions such as table.sort comparators or string.gsub replacements.
local loop = require "ckfb.core.loop"
local sys = require "ckfb.core.sys"
local errors = require "ckfb.error"

local M = {}

local WAIT = setmetatable({}, { __name = "ckfb.task.wait" })  -- the yield sentinel
local Task = { __name = "ckfb.task" }
Task.__index = Task

local by_coroutine = setmetatable({}, { __mode = "k" })
local ready = {}        -- tasks to resume, in order
local op_waiters = {}   -- op -> {task, ticket}
local live = {}         -- task -> true until it ends
local failures = {}     -- failed tasks, to report the ones nobody waited for

--- The task running now, or nil (main chunk, or a coroutine of the script's own).
local function current()
  local co = coroutine.running()
  return by_coroutine[co]
end

local function enqueue(t, ticket)
  if t.status == "waiting" and t.ticket == ticket then
    t.status = "ready"
    ready[#ready + 1] = t
  end
end

--- Wakes every task waiting on obj (a task or a group).
local function notify(obj)
  local joiners = obj.joiners
  obj.joiners = {}
  for _, j in ipairs(joiners) do enqueue(j[1], j[2]) end
end

--- Suspends the current task until something wakes it with its ticket.
local function suspend(t)
  t.ticket = t.ticket + 1
  t.status = "waiting"
  coroutine.yield(WAIT)
end

local function settle(t, status, err, results)
  t.status = status
  t.error = err
  t.results = results
  live[t] = nil
  if status == "failed" then failures[#failures + 1] = t end
  local group = t.group
  if group then
    group.remaining = group.remaining - 1
    if status == "failed" and not group.failed then group.failed = t end
    notify(group)
  end
  notify(t)
end

local function resume(t)
  t.status = "running"
  local ok, first = coroutine.resume(t.co)
  if coroutine.status(t.co) ~= "dead" then
    if first ~= WAIT then  -- a bare coroutine.yield(): let the others run
      t.status, t.ticket = "waiting", t.ticket + 1
      enqueue(t, t.ticket)
    end
    return
  end
  if not ok then settle(t, "failed", first)
  elseif t.outcome.ok then settle(t, "done", nil, t.outcome.results)
  else settle(t, "failed", t.outcome.error) end
end

--- Runs every ready task; -> whether any ran.
local function run_ready()
  local ran = false
  while #ready > 0 do
    local batch = ready
    ready = {}
    for _, t in ipairs(batch) do
      if t.status == "ready" then ran = true; resume(t) end
    end
  end
  return ran
end

--- One turn of the scheduler: run what is ready; if nothing was, wait once on the loop.
-- (Waiting after tasks ran would block on an unrelated pending operation, a lock's
-- renewal timer say, though what the caller waits for may be done already.)
function M.step()
  if run_ready() then return true end
  if loop.pending() == 0 then return false end
  for _, op in ipairs(loop.step()) do
    local w = op_waiters[op]
    if w then
      op_waiters[op] = nil
      enqueue(w[1], w[2])
    end
  end
  run_ready()
  return true
end

--- Runs the loop until done() is true; inside a task, sleeps on the objects
-- (tasks or groups) whose change can make it true.
local function wait_until(done, ...)
  local t = current()
  while not done() do
    if t then
      for i = 1, select("#", ...) do
        local obj = select(i, ...)
        obj.joiners[#obj.joiners + 1] = { t, t.ticket + 1 }
      end
      suspend(t)
    elseif not M.step() and not done() and #ready == 0 then
      error(errors.new("task.deadlock", "nothing left to wait for: the awaited task can never finish"), 0)
    end
  end
end

--- Waits for a loop operation (from ckfb.core.*) and returns its results.
function M.await(op)
  local t = current()
  if t then
    op_waiters[op] = { t, t.ticket + 1 }
    suspend(t)
  else
    while not op:done() do M.step() end
  end
  return op:result()
end

--- Waits until a streaming operation has data to take, or has finished.
function M.wait_ready(op)
  local t = current()
  if t then
    if op:ready() then return end
    op_waiters[op] = { t, t.ticket + 1 }
    suspend(t)
  else
    while not op:ready() do M.step() end
  end
end

local function spawn(fn, group, ...)
  if type(fn) ~= "function" then error("task: expected a function, got " .. type(fn), 3) end
  local args = table.pack(...)
  local t = setmetatable({ status = "ready", ticket = 0, joiners = {}, children = {}, group = group }, Task)
  t.outcome = {}
  t.co = coroutine.create(function()
    local results = table.pack(xpcall(fn, function(e)
      t.traceback = debug.traceback(tostring(e), 2)
      return e
    end, table.unpack(args, 1, args.n)))
    if results[1] then
      t.outcome.ok = true
      t.outcome.results = table.pack(table.unpack(results, 2, results.n))
    else
      t.outcome.error = results[2]
    end
  end)
  sys.watch(t.co)  -- Ctrl-C stops a task's busy loop too
  by_coroutine[t.co] = t
  live[t] = true
  local parent = current()
  if parent then parent.children[#parent.children + 1] = t end
  ready[#ready + 1] = t
  return t
end

--- Starts fn(...) as a new task; it runs when the current code next waits.
function M.spawn(fn, ...)
  return spawn(fn, nil, ...)
end

local function finished(t)
  return t.status == "done" or t.status == "failed" or t.status == "cancelled"
end

--- Stops a task that has not finished: its pending operation (a child, a
-- transfer) is cancelled, its <close> variables run, and so for its children.
function Task:cancel()
  if finished(self) then return end
  if self.status == "running" then error("task:cancel(): a task cannot cancel itself", 2) end
  for op, w in pairs(op_waiters) do
    if w[1] == self then op_waiters[op] = nil; op:cancel() end
  end
  for _, child in ipairs(self.children) do child:cancel() end
  coroutine.close(self.co)
  settle(self, "cancelled", errors.new("task.cancelled", "task was cancelled"))
end

-- The last task error raised again in its waiter, with the traceback of the frame
-- that failed inside the task (the waiter's own traceback only shows the wait).
local reraised = {}

local function raise_again(t)
  reraised.error, reraised.traceback = t.error, t.traceback
  error(t.error, 0)
end

--- traceback_of(err) -> the traceback of the task frame that raised err, when err came
-- out of a task (for -v and the prompt's :traceback), else nil.
function M.traceback_of(err)
  if err ~= nil and rawequal(err, reraised.error) then return reraised.traceback end
end

--- Waits for the task; returns its results or raises its error.
function Task:wait()
  wait_until(function() return finished(self) end, self)
  self.observed = true
  if self.status == "done" then return table.unpack(self.results, 1, self.results.n) end
  raise_again(self)
end

function Task:done()
  return finished(self)
end

function Task:__tostring()
  return "task (" .. self.status .. ")"
end

--- Runs the functions concurrently; returns their first results in order.
-- On the first error the others are cancelled and that error is raised.
function M.all(fns)
  if type(fns) ~= "table" then error("task.all: expected a list of functions", 2) end
  local group = { remaining = #fns, joiners = {} }
  local tasks = {}
  for i, fn in ipairs(fns) do tasks[i] = spawn(fn, group) end
  wait_until(function() return group.remaining == 0 or group.failed end, group)
  if group.failed then
    for _, t in ipairs(tasks) do t:cancel() end
    group.failed.observed = true
    raise_again(group.failed)
  end
  local results = {}
  for i, t in ipairs(tasks) do
    t.observed = true
    results[i] = t.results[1]
  end
  return table.unpack(results, 1, #tasks)
end

--- Waits `seconds` without blocking other tasks.
function M.sleep(seconds)
  if type(seconds) ~= "number" or seconds < 0 then error("task.sleep: expected seconds >= 0", 2) end
  return M.await(loop.timer(seconds)) and nil
end

--- Runs fn(...) with a time limit: its results, or nil and a "task.timeout"
-- error once `seconds` have passed (fn is then cancelled).
function M.timeout(seconds, fn, ...)
  if type(seconds) ~= "number" or seconds < 0 then error("task.timeout: expected seconds >= 0", 2) end
  local work = spawn(fn, nil, ...)
  local timer = spawn(M.sleep, nil, seconds)
  wait_until(function() return finished(work) or finished(timer) end, work, timer)
  if finished(work) then
    timer:cancel()
    return work:wait()
  end
  work:cancel()
  return nil, errors.new("task.timeout", string.format("timed out after %gs", seconds))
end

--- Runs until every task has ended; raises the first error nobody waited for.
-- The CLI calls it after the main chunk, as a script's last step.
function M.finish()
  wait_until(function() return next(live) == nil end)
  for _, t in ipairs(failures) do
    if not t.observed then
      t.observed = true
      raise_again(t)
    end
  end
end

local cleanups, cleanup_seq = {}, 0  -- entry -> its order; an entry is {fn = function}

--- cleanup(fn) -> forget(): fn runs if the run stops (Ctrl-C, SIGTERM, an
-- error escaping the script) before forget() is called: for work a server
-- must be told to undo, such as an unfinished multipart upload. A stopped
-- task cannot wait in its <close> handlers; the CLI runs these afterwards.
function M.cleanup(fn)
  if type(fn) ~= "function" then error("task.cleanup: expected a function", 2) end
  cleanup_seq = cleanup_seq + 1
  local entry = { fn = fn }
  cleanups[entry] = cleanup_seq
  return function() cleanups[entry] = nil end
end

--- run_cleanups([seconds]) -> how many ran: after a stop, the pending cleanups,
-- newest first, with waiting allowed again, for at most `seconds` (15) in all.
function M.run_cleanups(seconds)
  local pending = {}
  for entry in pairs(cleanups) do pending[#pending + 1] = entry end
  table.sort(pending, function(a, b) return cleanups[a] > cleanups[b] end)
  cleanups = {}
  if #pending == 0 then return 0 end
  sys.acknowledge_interrupt()
  M.timeout(seconds or 15, function()
    for _, entry in ipairs(pending) do
      local ok, err = pcall(entry.fn)
      if not ok then io.stderr:write("ckfb: a cleanup failed: ", tostring(err):match("^[^\n]*"), "\n") end
    end
  end)
  return #pending
end

--- Cancels every task still alive (Ctrl-C, or an error escaping the main chunk).
function M.cancel_all()
  for t in pairs(live) do
    if t.status ~= "running" then t:cancel() end
  end
end

return M
