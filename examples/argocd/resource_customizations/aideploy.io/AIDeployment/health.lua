-- Argo CD health of an aideploy.io/AIDeployment, from the phase the operator writes.
--   Suspended:   waiting for people or time (approvals, the staging object it promotes
--                from, the deployment window, an AMBER go-live decision): nothing is wrong, and nothing moves without them.
--   Progressing: the operator is working (or has not yet seen the current spec).
--   Healthy:     the release of the current spec serves, verified (Monitoring, Succeeded).
--   Degraded:    rolled back or failed: a person must act.
-- The message is the operator's own status.message.
local hs = {}

local suspended = {
  AwaitingApproval = true, AwaitingPromotion = true, AwaitingWindow = true, Held = true
}
local progressing = { Deploying = true, Verifying = true, RollingBack = true }
local healthy = { Monitoring = true, Succeeded = true }
local degraded = { RolledBack = true, Failed = true }

local status = obj.status
if status == nil or status.phase == nil or status.phase == "" then
  hs.status = "Progressing"
  hs.message = "Waiting for the aideploy operator to process this AIDeployment"
  return hs
end

local phase = status.phase
local message = status.message
if message == nil or message == "" then
  message = "Phase " .. phase
end

local generation = obj.metadata and obj.metadata.generation
local current = generation == nil or status.observedGeneration == generation

if not current then
  -- Whatever the phase says, it is about an older spec: the new one is being worked on.
  hs.status = "Progressing"
  hs.message = "Waiting for the aideploy operator to observe generation " .. tostring(generation)
    .. " (" .. phase .. ": " .. message .. ")"
  return hs
end

hs.message = message
if suspended[phase] then
  hs.status = "Suspended"
elseif progressing[phase] then
  hs.status = "Progressing"
elseif healthy[phase] then
  hs.status = "Healthy"
elseif degraded[phase] then
  hs.status = "Degraded"
else
  hs.status = "Unknown"
  hs.message = "Unknown phase " .. phase .. ": " .. message
end
return hs
