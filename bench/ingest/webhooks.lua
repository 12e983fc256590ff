-- Replays pre-signed Twilio callbacks, one after another, across threads.
local bodies, sigs = {}, {}
local n, i = 0, 0

function setup(thread) end

function init(args)
  for line in io.lines(args[1]) do
    local body, sig = line:match("^(.-)\t(.*)$")
    n = n + 1
    bodies[n], sigs[n] = body, sig
  end
  i = math.random(n)
end

function request()
  i = i % n + 1
  return wrk.format("POST", nil, {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["X-Twilio-Signature"] = sigs[i],
  }, bodies[i])
end
