--- batch_settle(prefix, bid, member, outcome, now_s, wake_cap)
-- Records that member (a jid, or "b-CHILD" for a child batch) of batch bid ended with outcome
-- (batch_record), then fires the batch's callbacks whose moment has come (batch_check).
--   outcome "succeeded": the member leaves b-BID-jids (and b-BID-failed);
--   outcome "failed":    a member still pending joins b-BID-failed (it ran and failed at least once);
--   outcome "died":      as failed, and it joins b-BID-died; the first death fires on_death.
-- batch_check fires on_complete when every member left has failed, on_success when none is left, and
-- not while a block holds the batch open; a batch that just completed or succeeded is in turn a member
-- of its parent, so the check goes on up the chain. A script settling many members records them all
-- and checks each batch once.
-- Every step is a set operation, so settling the same member twice (a job run again after its worker
-- was killed) changes nothing; a callback fires when its flag (complete_at, success_at, death_at) is
-- first set with HSETNX, so it fires once, in the same script as the ack or failure that caused it.
-- A batch that is gone (expired, or never created) is left alone: its member sets are gone with it.
--
-- The hash b-BID holds: created_at, expires_at, description, parent, ts (the payload time style),
-- open (blocks still pushing into it), total, pending, failures, kids (child batches not yet succeeded),
-- the flags, and per event E in complete/success/death: cb-E (the callback payload without
-- enqueued_at), cb-E-queue, cb-E-jid.
--- @include "includes/set_enqueued_at"
--- @include "includes/priority_of"
--- @include "includes/store_jobs"

local function batch_stamp(style, now_s)
  if style == "ms" then return string.format("%d", math.floor(now_s * 1000)) end
  return string.format("%.6f", now_s)
end

-- Push the callback for event, if the batch has one, at its job's priority (store_jobs); in a nested
-- batch it joins the parent batch, so the parent waits for its children's callbacks.
local function batch_callback(prefix, hash_key, event, now_s, wake_cap)
  local cb = redis.call("HMGET", hash_key, "cb-" .. event, "cb-" .. event .. "-queue",
    "cb-" .. event .. "-jid", "parent", "ts")
  local template, queue_name, jid, parent, style = cb[1], cb[2], cb[3], cb[4], cb[5]
  if not template then return end
  if parent and parent ~= "" then
    local parent_key = prefix .. "b-" .. parent
    if redis.call("SADD", parent_key .. "-jids", jid) == 1 then
      redis.call("HINCRBY", parent_key, "total", 1)
      redis.call("HINCRBY", parent_key, "pending", 1)
    end
  end
  local raw = set_enqueued_at(template, batch_stamp(style, now_s))
  store_jobs(prefix .. "queues", prefix .. "queue:" .. queue_name, "", prefix .. "pyq:wake:" .. queue_name,
    prefix .. "pyq:prio:" .. queue_name, prefix .. "pyq:prio-seq", queue_name, "",
    priority_of(cjson.decode(template)), { raw }, 1, wake_cap)
end

-- Returns true when this was the batch's first death (its on_death is due).
local function batch_record(hash_key, member, outcome, now_s)
  local jids_key, failed_key = hash_key .. "-jids", hash_key .. "-failed"
  local counter = string.sub(member, 1, 2) == "b-" and "kids" or "pending"
  if outcome == "succeeded" then
    if redis.call("SREM", jids_key, member) == 1 then
      redis.call("HINCRBY", hash_key, counter, -1)
      if redis.call("SREM", failed_key, member) == 1 and counter == "pending" then
        redis.call("HINCRBY", hash_key, "failures", -1)
      end
    end
    return false
  end
  if redis.call("SISMEMBER", jids_key, member) == 0 then return false end
  local expires_at = redis.call("HGET", hash_key, "expires_at")
  if not expires_at then return false end
  if redis.call("SADD", failed_key, member) == 1 then
    if counter == "pending" then redis.call("HINCRBY", hash_key, "failures", 1) end
    redis.call("EXPIREAT", failed_key, expires_at)
  end
  if outcome ~= "died" then return false end
  redis.call("SADD", hash_key .. "-died", member)
  redis.call("EXPIREAT", hash_key .. "-died", expires_at)
  return redis.call("HSETNX", hash_key, "death_at", now_s) == 1
end

local function batch_check(prefix, bid, now_s, wake_cap)
  while bid and bid ~= "" do
    local hash_key = prefix .. "b-" .. bid
    local state = redis.call("HMGET", hash_key, "expires_at", "open", "parent")
    if not state[1] or (tonumber(state[2]) or 0) > 0 then return end
    local left = redis.call("SCARD", hash_key .. "-jids")
    local failed = redis.call("SCARD", hash_key .. "-failed")
    local parent_outcome = nil
    if left == failed and redis.call("HSETNX", hash_key, "complete_at", now_s) == 1 then
      batch_callback(prefix, hash_key, "complete", now_s, wake_cap)
      if left > 0 then parent_outcome = "failed" end
    end
    if left == 0 and redis.call("HSETNX", hash_key, "success_at", now_s) == 1 then
      batch_callback(prefix, hash_key, "success", now_s, wake_cap)
      parent_outcome = "succeeded"
    end
    local parent = state[3]
    if not parent_outcome or not parent or parent == "" then return end
    batch_record(prefix .. "b-" .. parent, "b-" .. bid, parent_outcome, now_s)
    bid = parent
  end
end

local function batch_settle(prefix, bid, member, outcome, now_s, wake_cap)
  local hash_key = prefix .. "b-" .. bid
  if batch_record(hash_key, member, outcome, now_s) then
    batch_callback(prefix, hash_key, "death", now_s, wake_cap)
  end
  batch_check(prefix, bid, now_s, wake_cap)
end
