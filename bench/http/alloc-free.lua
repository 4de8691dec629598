-- wrk script: alloc_pages + free_pages pairs on one zone.
-- Each wrk thread keeps a queue of pfns it allocated; a request frees one when the queue has
-- one, and allocates otherwise, so every alloc is followed by its free. Requests per second / 2
-- is the pair rate. Usage: wrk -t2 -c32 -d10s -s alloc-free.lua http://127.0.0.1:8080
-- MACHINE=name calls /machines/name/zones/...; left out, today's paths (default's aliases).
local zone = os.getenv("ZONE") or "Normal"
local machine = os.getenv("MACHINE")
if machine == "" then machine = nil end
local prefix = machine and ("/machines/" .. machine) or ""
local order = tonumber(os.getenv("ORDER") or "0")
local pending = {}
local headers = { ["Content-Type"] = "application/json" }

request = function()
  local pfn = table.remove(pending)
  if pfn then
    return wrk.format("POST", prefix .. "/zones/" .. zone .. "/free_pages", headers,
      '{"pfn":' .. pfn .. ',"order":' .. order .. '}')
  end
  return wrk.format("POST", prefix .. "/zones/" .. zone .. "/alloc_pages", headers,
    '{"order":' .. order .. ',"gfp":"GFP_KERNEL"}')
end

response = function(status, hdrs, body)
  if status == 201 then
    local pfn = string.match(body, '"pfn":(%d+)')
    if pfn then table.insert(pending, pfn) end
  elseif status ~= 200 then
    io.stderr:write("status " .. status .. ": " .. body .. "\n")
  end
end
