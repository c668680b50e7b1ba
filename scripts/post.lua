-- wrk script: POST the JSON body in the file $WRK_BODY to the URL given, and count the statuses.
-- wrk runs one Lua state per thread; `done` gathers every thread's counts and prints
-- "status <code> <count>" lines after wrk's own report.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local file = assert(io.open(os.getenv("WRK_BODY"), "rb"))
wrk.body = file:read("*a")
file:close()

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  statuses = {}
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      io.write(string.format("status %d %d\n", status, count))
    end
  end
end
