--- priority_of(job) -> integer priority; 0, the default, means the plain Sidekiq list
-- A job's top-level "priority" when it is a JSON number, rounded down and held within -10000..10000;
-- anything else (no field, a string, null, a payload that is not JSON: job nil) is the default, 0.
-- src/pyq/priority.py applies the same rule in Python (tests/test_priority.py holds them together).
local function priority_of(job)
  if type(job) ~= "table" or type(job["priority"]) ~= "number" then return 0 end
  return math.max(-10000, math.min(10000, math.floor(job["priority"])))
end
