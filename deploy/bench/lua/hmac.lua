-- HMAC-SHA256 and base64 for wrk's LuaJIT (its `bit` library; no C modules),
-- so `rayhook bench --sign` can sign every request in wrk's own threads.
-- The key's inner and outer blocks are hashed once (hmac_key); each message
-- then costs only its own blocks.
local bit = require("bit")
local band, bor, bxor, bnot = bit.band, bit.bor, bit.bxor, bit.bnot
local rshift, lshift, ror, tobit, tohex = bit.rshift, bit.lshift, bit.ror, bit.tobit, bit.tohex
local byte, char, rep, sub, format = string.byte, string.char, string.rep, string.sub, string.format

local K = {
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
}
for i = 1, 64 do K[i] = tobit(K[i]) end

local INITIAL = {
  tobit(0x6a09e667), tobit(0xbb67ae85), tobit(0x3c6ef372), tobit(0xa54ff53a),
  tobit(0x510e527f), tobit(0x9b05688c), tobit(0x1f83d9ab), tobit(0x5be0cd19),
}

local w = {}

-- Fold the 64-byte blocks of `data` (its length a multiple of 64) into state H.
local function blocks(H, data)
  for start = 1, #data, 64 do
    for j = 0, 15 do
      local a, b, c, d = byte(data, start + 4 * j, start + 4 * j + 3)
      w[j] = bor(lshift(a, 24), lshift(b, 16), lshift(c, 8), d)
    end
    for j = 16, 63 do
      local x, y = w[j - 15], w[j - 2]
      local s0 = bxor(ror(x, 7), ror(x, 18), rshift(x, 3))
      local s1 = bxor(ror(y, 17), ror(y, 19), rshift(y, 10))
      w[j] = tobit(w[j - 16] + s0 + w[j - 7] + s1)
    end
    local a, b, c, d, e, f, g, h = H[1], H[2], H[3], H[4], H[5], H[6], H[7], H[8]
    for j = 0, 63 do
      local S1 = bxor(ror(e, 6), ror(e, 11), ror(e, 25))
      local ch = bxor(band(e, f), band(bnot(e), g))
      local t1 = tobit(h + S1 + ch + K[j + 1] + w[j])
      local S0 = bxor(ror(a, 2), ror(a, 13), ror(a, 22))
      local maj = bxor(band(a, b), band(a, c), band(b, c))
      h, g, f, e, d, c, b, a = g, f, e, tobit(d + t1), c, b, a, tobit(t1 + S0 + maj)
    end
    H[1], H[2], H[3], H[4] = tobit(H[1] + a), tobit(H[2] + b), tobit(H[3] + c), tobit(H[4] + d)
    H[5], H[6], H[7], H[8] = tobit(H[5] + e), tobit(H[6] + f), tobit(H[7] + g), tobit(H[8] + h)
  end
end

-- The digest (32 raw bytes) of `message` hashed on from `state`, which has
-- already absorbed `before` bytes (a whole number of blocks).
local function finish(state, before, message)
  local H = { state[1], state[2], state[3], state[4], state[5], state[6], state[7], state[8] }
  local bits = (before + #message) * 8
  local padding = 64 - (#message + 9) % 64
  if padding == 64 then padding = 0 end
  local tail = message .. "\128" .. rep("\0", padding + 4)
    .. char(band(rshift(bits, 24), 255), band(rshift(bits, 16), 255),
            band(rshift(bits, 8), 255), band(bits, 255))
  blocks(H, tail)
  local out = {}
  for i = 1, 8 do
    local v = H[i]
    out[i] = char(band(rshift(v, 24), 255), band(rshift(v, 16), 255),
                  band(rshift(v, 8), 255), band(v, 255))
  end
  return table.concat(out)
end

local function sha256(message)
  return finish(INITIAL, 0, message)
end

-- A key prepared once: its inner and outer padded blocks already hashed.
function hmac_key(key)
  if #key > 64 then key = sha256(key) end
  key = key .. rep("\0", 64 - #key)
  local inner, outer = {}, {}
  for i = 1, 64 do
    local k = byte(key, i)
    inner[i] = char(bxor(k, 0x36))
    outer[i] = char(bxor(k, 0x5c))
  end
  local istate = { unpack(INITIAL) }
  local ostate = { unpack(INITIAL) }
  blocks(istate, table.concat(inner))
  blocks(ostate, table.concat(outer))
  return { inner = istate, outer = ostate }
end

function hmac_sha256(prepared, message)
  return finish(prepared.outer, 64, finish(prepared.inner, 64, message))
end

function to_hex(raw)
  local out = {}
  for i = 1, #raw do out[i] = format("%02x", byte(raw, i)) end
  return table.concat(out)
end

local ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

function to_base64(raw)
  local out = {}
  for i = 1, #raw, 3 do
    local a, b, c = byte(raw, i, i + 2)
    local n = lshift(a, 16) + lshift(b or 0, 8) + (c or 0)
    local s1 = rshift(n, 18) + 1
    local s2 = band(rshift(n, 12), 63) + 1
    local s3 = band(rshift(n, 6), 63) + 1
    local s4 = band(n, 63) + 1
    out[#out + 1] = sub(ALPHABET, s1, s1) .. sub(ALPHABET, s2, s2)
      .. (b and sub(ALPHABET, s3, s3) or "=") .. (c and sub(ALPHABET, s4, s4) or "=")
  end
  return table.concat(out)
end
