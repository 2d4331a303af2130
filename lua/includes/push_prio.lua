--- push_prio(prio_key, seq_key, raw, priority, front)
-- Adds raw to a queue's priority zset (pyq:prio:NAME), scored -priority * 2^38 + order: a higher
-- priority has a lower score and is fetched first. order is the next value of seq_key (FIFO within one
-- priority), or 0 when front: a job put back runs before the others of its priority, as a put-back
-- job goes to the tail of a list. Priorities are within -10000..10000 (priority_of), so every score
-- is an integer a double holds exactly.
local function push_prio(prio_key, seq_key, raw, priority, front)
  local span = 274877906944  -- 2^38 orders per priority
  local order = 0
  if not front then order = redis.call("INCR", seq_key) % span end
  redis.call("ZADD", prio_key, -priority * span + order, raw)
end
