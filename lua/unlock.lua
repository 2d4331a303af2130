-- unlock: release one sidekiq-unique-jobs v8 lock held by a jid (the gem's unlock, single-lock case).
--
-- KEYS[1] digest      string  uniquejobs:HEX (or uniquejobs:HEX:RUN), jid of the holder
-- KEYS[2] queued      list    DIGEST:QUEUED, gets the wake-up token "1" for blocked Ruby waiters
-- KEYS[3] primed      list    DIGEST:PRIMED, Ruby's acquire list, dropped when empty
-- KEYS[4] locked      hash    DIGEST:LOCKED, jid -> lock time
-- KEYS[5] info        string  DIGEST:INFO, lock details written by Ruby with lock_info
-- KEYS[6] digests     zset    uniquejobs:digests
-- ARGV[1] jid                 the job releasing the lock
-- ARGV[2] lock_type           until_expired keeps the lock (only leaves the digests zset)
--
-- Releases only when LOCKED holds jid, or when no job holds or waits for the digest at all (an orphan).
-- Returns: 1 released, 0 another job holds the lock (nothing changed but jid's own queued/primed entries).

local digest_key, queued_key, primed_key, locked_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local info_key, digests_key = KEYS[5], KEYS[6]
local jid, lock_type = ARGV[1], ARGV[2]

if redis.call("HEXISTS", locked_key, jid) == 0 then
  redis.call("LREM", queued_key, -1, jid)
  redis.call("LREM", primed_key, -1, jid)
  local waiting = redis.call("LLEN", queued_key) + redis.call("LLEN", primed_key)
  if waiting + redis.call("HLEN", locked_key) > 0 then return 0 end
end

if lock_type ~= "until_expired" then
  redis.call("HDEL", locked_key, jid)
  redis.call("UNLINK", digest_key, info_key)
  if redis.call("HLEN", locked_key) == 0 then redis.call("UNLINK", locked_key) end
  if redis.call("LLEN", primed_key) == 0 then redis.call("UNLINK", primed_key) end
end
redis.call("ZREM", digests_key, digest_key)
redis.call("LPUSH", queued_key, "1")
redis.call("PEXPIRE", queued_key, 5000)
return 1
