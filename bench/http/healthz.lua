-- wrk script: GET /healthz through the same Lua request/response hooks as alloc-free.lua, so
-- both runs pay the same client-side cost on a machine where wrk and the server share the cores.
local pending = {}
request = function()
  table.remove(pending)
  return wrk.format("GET", "/healthz")
end
response = function(status, hdrs, body)
  if status == 200 and string.match(body, "Healthy") then table.insert(pending, 1) end
end
