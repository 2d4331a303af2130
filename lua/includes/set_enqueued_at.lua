--- set_enqueued_at(raw, value) -> raw with its top-level "enqueued_at" set to value
-- Edits the JSON text in place instead of decoding and re-encoding it, so every other byte
-- (key order, float precision, unicode) stays exactly as the producer wrote it. Only the
-- top-level key is touched: ActiveJob envelopes carry a nested "enqueued_at" of their own.
-- An existing value that is an array or object is left alone rather than half-replaced.
local function set_enqueued_at(raw, value)
  local depth, pos, len = 0, 1, #raw
  while pos <= len do
    local i = string.find(raw, '[%[%]{}"]', pos)
    if not i then break end
    local c = string.sub(raw, i, i)
    if c == '"' then
      local j = i + 1
      while true do
        j = string.find(raw, '["\\]', j)
        if not j then return raw end
        if string.sub(raw, j, j) == "\\" then j = j + 2 else break end
      end
      if depth == 1 and string.sub(raw, i, j) == '"enqueued_at"' then
        local _, colon_end = string.find(raw, "^%s*:%s*", j + 1)
        local opener = colon_end and string.sub(raw, colon_end + 1, colon_end + 1)
        if opener == "[" or opener == "{" then return raw end  -- not a timestamp: leave the job as it is
        if colon_end then
          local vend = select(2, string.find(raw, '^[^,}%s]+', colon_end + 1))
          if string.sub(raw, colon_end + 1, colon_end + 1) == '"' then
            vend = string.find(raw, '"', colon_end + 2, true)
          end
          if vend then
            return string.sub(raw, 1, colon_end) .. value .. string.sub(raw, vend + 1)
          end
        end
      end
      pos = j + 1
    else
      if c == "{" or c == "[" then depth = depth + 1 else depth = depth - 1 end
      pos = i + 1
    end
  end
  local close = string.find(raw, "}%s*$")
  if not close then return raw end
  local sep = string.find(string.sub(raw, 1, close - 1), "^%s*{%s*$") and "" or ","
  return string.sub(raw, 1, close - 1) .. sep .. '"enqueued_at":' .. value .. string.sub(raw, close)
end
