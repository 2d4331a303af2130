--- unique_take(digest_key, locked_key, digests_key, expiring_key, jid, pttl, lock_type, score, now_s)
-- Takes a sidekiq-unique-jobs v8 single lock the way the gem's lock scripts leave it: D holds the
-- jid, D:LOCKED maps jid -> lock time, and the digest is listed in uniquejobs:digests (or, for an
-- until_expired lock with a TTL, in uniquejobs:expiring_digests at now + pttl, the gem's mixed units).
-- The zset member is the digest key itself, as in the gem. A non-empty D:LOCKED naming another
-- jid is a conflict: that is what the gem's own lock scripts test.
-- Returns: {1, jid} when the lock is ours (taken now or already held), {0, holder_jid} otherwise.
local function unique_take(digest_key, locked_key, digests_key, expiring_key, jid, pttl, lock_type, score, now_s)
  if redis.call("HLEN", locked_key) > 0 then
    if redis.call("HEXISTS", locked_key, jid) == 1 then return { 1, jid } end
    local holder = redis.call("GET", digest_key) or redis.call("HKEYS", locked_key)[1]
    return { 0, holder }
  end
  redis.call("SET", digest_key, jid)
  if lock_type == "until_expired" and pttl > 0 then
    redis.call("ZADD", expiring_key, tonumber(now_s) + pttl, digest_key)
  else
    redis.call("ZADD", digests_key, score, digest_key)
  end
  redis.call("HSET", locked_key, jid, now_s)
  if pttl > 0 then
    redis.call("PEXPIRE", digest_key, pttl)
    redis.call("PEXPIRE", locked_key, pttl)
  end
  return { 1, jid }
end
