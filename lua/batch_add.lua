-- batch_add: make jobs members of a batch before they are pushed (a unique job; batch_forget undoes it).
--
-- KEYS[1] batch       hash   b-BID
-- KEYS[2] jids        set    b-BID-jids, the members that have not succeeded yet
-- ARGV[1..] jids             the jobs' jids
--
-- Returns: the number of new members, or -1 when the batch is gone (expired or never created).
--- @include "includes/batch_join"

return batch_join(KEYS[1], KEYS[2], ARGV)
