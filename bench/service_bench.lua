-- wrk script of bench/service_bench.py: one kind of request (BENCH_MODE), each from its own client.
--   get_confirm  GET  a confirmation page; BENCH_PATHS: a file of signed /newsletter/confirmer/… paths
--   post_confirm POST a confirmation, a different path each time (a new reader each time)
--   signup       POST /newsletter/inscription with a new address each time
-- Every request carries X-Forwarded-For (the service trusts it from 127.0.0.1, as behind nginx):
--   BENCH_CLIENTS=0: a new client address each request (the per-client limiters do their work, and
--   never refuse); BENCH_CLIENTS=N: N clients taking turns, and each thread stops after BENCH_QUOTA
--   BENCH_QUOTA answers and creates the file BENCH_DONE<thread number> (the burst).
-- Statuses are counted per thread and printed by done() as "status CODE COUNT" lines.

local mode = os.getenv("BENCH_MODE")
local paths_file = os.getenv("BENCH_PATHS")
local run = os.getenv("BENCH_RUN") or "0"
local clients = tonumber(os.getenv("BENCH_CLIENTS") or "0")
local quota = tonumber(os.getenv("BENCH_QUOTA") or "0")
local first_octet = os.getenv("BENCH_NET") or "10"

local threads = {}
local nthreads = tonumber(os.getenv("BENCH_THREADS") or "2")

function setup(thread)
   thread:set("tid", #threads)
   table.insert(threads, thread)
end

function init(args)
   paths = {}
   if paths_file then
      local all = {}
      for line in io.lines(paths_file) do all[#all + 1] = line end
      -- Each thread its own slice: two threads never confirm the same reader.
      local share = math.floor(#all / nthreads)
      for i = tid * share + 1, (tid + 1) * share do paths[#paths + 1] = all[i] end
   end
   issued, answered, statuses = 0, 0, {}
   -- wrk calls the first thread's request() once before any connection, to check what it returns, and
   -- never sends that request: it must not use up a number (the burst lost one signup of 5,000 to it).
   checked = tid ~= 0
end

local function client_address(n)
   if clients > 0 then
      local per_thread = clients / nthreads
      local c = tid * per_thread + (n % per_thread)
      return string.format("%s.%d.%d.%d", first_octet, run % 256, math.floor(c / 256), c % 256)
   end
   local c = tid * 4194304 + n  -- 2^22 addresses a thread
   return string.format("%s.%d.%d.%d", first_octet, math.floor(c / 65536) % 256, math.floor(c / 256) % 256, c % 256)
end

function request()
   local n = issued
   if checked then issued = issued + 1 else checked = true end
   local headers = {["X-Forwarded-For"] = client_address(n)}
   if quota > 0 and n >= quota then
      -- This thread has sent its share: a harmless request, late enough that the thread stops first.
      return wrk.format("GET", "/newsletter/fin-du-banc", headers)
   end
   if mode == "signup" then
      headers["Content-Type"] = "application/x-www-form-urlencoded"
      local body = string.format("email=r%st%dn%d%%40exemple.fr&site_web=", run, tid, n)
      return wrk.format("POST", "/newsletter/inscription", headers, body)
   end
   local path = paths[(n % #paths) + 1]
   if mode == "post_confirm" then
      headers["Content-Type"] = "application/x-www-form-urlencoded"
      return wrk.format("POST", path, headers, "")
   end
   return wrk.format("GET", path, headers)
end

-- Only in the burst: wrk runs faster without these two.
if quota > 0 then
   function delay()
      if issued >= quota then return 600000 end
      return 0
   end

   function response(status, headers, body)
      statuses[status] = (statuses[status] or 0) + 1
      if status ~= 404 then answered = answered + 1 end  -- 404: a late filler, not a signup
      if answered == quota and not finished then
         finished = true
         -- wrk's main thread sleeps for -d whatever its threads do: tell the harness, which sends SIGINT.
         local f = io.open(os.getenv("BENCH_DONE") .. tid, "w")
         f:close()
         wrk.thread:stop()
      end
   end
end

function done(summary, latency, requests)
   local total = {}
   for _, thread in ipairs(threads) do
      local counts = thread:get("statuses")
      for code, count in pairs(counts) do total[code] = (total[code] or 0) + count end
   end
   for code, count in pairs(total) do io.write(string.format("status %d %d\n", code, count)) end
end
