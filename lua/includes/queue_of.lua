--- queue_of(raw) -> queue_name, job
-- The queue a raw job goes back to: its "queue" field, or "default" when the payload is not a JSON
-- object with a non-empty string queue (such a payload is pushed anyway, never dropped). job is the
-- decoded table, or nil when raw is not JSON.
local function queue_of(raw)
  local ok, job = pcall(cjson.decode, raw)
  if not (ok and type(job) == "table") then return "default", nil end
  if type(job["queue"]) == "string" and job["queue"] ~= "" then return job["queue"], job end
  return "default", job
end
