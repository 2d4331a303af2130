--- crash_burial(prefix, job, raw, max_crashes, crash_ttl_s, now_text) -> dead-set entry, or nil
-- Counts one more death of a worker while raw (decoded: job, or nil) was in flight, in pyq:crashes:JID. At
-- max_crashes (0 = never) the job keeps killing its workers: the counter goes and the job is returned
-- with error_class "pyq.WorkerCrashed" appended to its JSON text, so every other value keeps its
-- exact bytes (JSON readers take the last of repeated keys). Below it, nil: push the job back.
local function crash_burial(prefix, job, raw, max_crashes, crash_ttl_s, now_text)
  if max_crashes <= 0 or not job or type(job["jid"]) ~= "string" then return nil end
  local crashes_key = prefix .. "pyq:crashes:" .. job["jid"]
  local crashes = redis.call("INCR", crashes_key)
  if crashes < max_crashes then
    redis.call("EXPIRE", crashes_key, crash_ttl_s)
    return nil
  end
  redis.call("DEL", crashes_key)
  local body = string.gsub(raw, "%s*}%s*$", "")
  return body .. ',"error_class":"pyq.WorkerCrashed","error_message":"the worker process died '
    .. crashes .. ' times while this job was in flight","failed_at":' .. now_text .. '}'
end
