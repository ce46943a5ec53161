-- Argo CD health check for modelserve.dev/ModelDeployment (Lua 5.1, as Argo CD's gopher-lua runs it).
-- Paste into argocd-cm as resource.customizations.health.modelserve.dev_ModelDeployment (see
-- argocd-cm-patch.yaml). Order matters:
--   1. the operator has not seen the current spec yet (status.observedGeneration < generation):
--      Progressing, whatever an older status says, so a sync never turns Healthy on stale status;
--   2. spec.suspend / condition Suspended=True: Suspended;
--   3. a canary rollout (docs/rollouts.md): RolledBack=True -> Degraded until the spec changes;
--      RolloutProgressing=True -> Progressing;
--   4. condition Ready, if computed for the current generation (its own observedGeneration):
--      True -> Healthy; False with a transient reason -> Progressing; False with any other reason
--      -> Degraded (a failure the script does not know must not look like progress); Unknown ->
--      Progressing.
local hs = {}

-- The Ready=False reasons that mean "wait". The list is modelserve.status.TRANSIENT_REASONS; the
-- same list is in docs/status.md, and tests/e2e/test_argocd_health.py fails when they differ.
-- BEGIN TRANSIENT_REASONS
local transient = {
  Creating = true,
  RollingOut = true,
  ClaimPending = true,
  CacheFilling = true,
}
-- END TRANSIENT_REASONS

local function condition(status, type_)
  if status == nil or status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == type_ then
      return c
    end
  end
  return nil
end

local function describe(c)
  local reason = c.reason or ""
  local message = c.message or ""
  if reason ~= "" and message ~= "" then
    return reason .. ": " .. message
  end
  if reason ~= "" then
    return reason
  end
  return message
end

local generation = 0
if obj.metadata ~= nil and obj.metadata.generation ~= nil then
  generation = obj.metadata.generation
end
local status = obj.status
local observed = nil
if status ~= nil then
  observed = status.observedGeneration
end

if observed == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the modelserve operator to reconcile this ModelDeployment"
  return hs
end
if observed < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
    .. " (status is for generation " .. tostring(observed) .. ")"
  return hs
end

-- A condition computed for an older spec says nothing about this one.
local function current(c)
  return c ~= nil and (c.observedGeneration == nil or c.observedGeneration >= generation)
end

local suspended = condition(status, "Suspended")
if (current(suspended) and suspended.status == "True")
    or (obj.spec ~= nil and obj.spec.suspend == true) then
  hs.status = "Suspended"
  hs.message = "Suspended: scaled to zero, every object kept"
  if suspended ~= nil and suspended.message ~= nil and suspended.message ~= "" then
    hs.message = "Suspended: " .. suspended.message
  end
  return hs
end

local rolledBack = condition(status, "RolledBack")
if current(rolledBack) and rolledBack.status == "True" then
  hs.status = "Degraded"
  hs.message = "RolledBack: " .. describe(rolledBack)
  return hs
end
local rolling = condition(status, "RolloutProgressing")
if current(rolling) and rolling.status == "True" then
  hs.status = "Progressing"
  hs.message = "Rollout: " .. describe(rolling)
  return hs
end

local ready = condition(status, "Ready")
if ready == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the Ready condition"
  return hs
end
if not current(ready) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
    .. " (Ready is for generation " .. tostring(ready.observedGeneration) .. ")"
  return hs
end
if ready.status == "True" and (ready.reason == "ScaledToZero" or ready.reason == "Waking") then
  -- Scaled to zero by its autoscaler: nothing is wrong, the activator wakes it on the next request.
  hs.status = "Healthy"
  hs.message = describe(ready)
  return hs
end
if ready.status == "True" then
  hs.status = "Healthy"
  local replicas = status.readyReplicas or 0
  hs.message = "Ready: " .. tostring(replicas) .. " replica(s) serving"
  if status.modelVersions ~= nil and status.modelVersions ~= "" then
    hs.message = hs.message .. " (versions: " .. tostring(status.modelVersions) .. ")"
  end
  return hs
end
if ready.status == "False" and not (ready.reason ~= nil and transient[ready.reason]) then
  hs.status = "Degraded"
  hs.message = describe(ready)
  if hs.message == "" then
    hs.message = "Ready is False"
  end
  return hs
end
hs.status = "Progressing"
local text = describe(ready)
if text == "" then
  text = "Ready is " .. tostring(ready.status)
end
hs.message = text
return hs
