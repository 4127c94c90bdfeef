-- Argo CD health check for the ragflow.operator.dev kinds (RagFlowCluster, BackupPolicy,
-- AlertPolicy). All three report Kubernetes-style status: observedGeneration plus conditions
-- (Ready summary, Progressing, Degraded; StandbyReady for a standby RagFlowCluster). Installed once per kind by argocd-cm-health.yaml;
-- tested by tests/unit/delivery/test_argocd_health_lua.py against sample statuses.
local hs = {}

local function condition(conditions, wanted)
  if conditions == nil then
    return nil
  end
  for _, c in ipairs(conditions) do
    if c.type == wanted then
      return c
    end
  end
  return nil
end

local function describe(c, fallback)
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    return c.message
  end
  if c ~= nil and c.reason ~= nil and c.reason ~= "" then
    return c.reason
  end
  return fallback
end

if obj.status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to report status"
  return hs
end

local generation = obj.metadata.generation
local observed = obj.status.observedGeneration
if generation ~= nil and (observed == nil or observed < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end

local conditions = obj.status.conditions
local degraded = condition(conditions, "Degraded")
if degraded ~= nil and degraded.status == "True" then
  hs.status = "Degraded"
  hs.message = describe(degraded, "Degraded")
  return hs
end

-- BackupPolicy: a failed last backup or validation means the data is not protected.
for _, kind in ipairs({"LastBackupSucceeded", "LastValidationSucceeded"}) do
  local outcome = condition(conditions, kind)
  if outcome ~= nil and outcome.status == "False" then
    hs.status = "Degraded"
    hs.message = describe(outcome, kind .. " is False")
    return hs
  end
end

local ready = condition(conditions, "Ready")
local progressing = condition(conditions, "Progressing")

-- RagFlowCluster bootstrapping from a backup (spec.restoreFrom): progressing while the operator
-- reports the restore under way (Ready=False, Restoring); any other Ready=False reason (the
-- restore Job failed, a Secret is missing) is not progress and falls through to Degraded.
local restored = condition(conditions, "Restored")
if restored ~= nil and restored.status == "False" and restored.reason ~= "RestoreFailed" and
    ready ~= nil and ready.status == "False" and ready.reason == "Restoring" then
  hs.status = "Progressing"
  hs.message = describe(restored, "Restoring from backup")
  return hs
end

-- RagFlowCluster standby (spec.standby): healthy while it follows its primary within
-- maxLagSeconds (StandbyReady=True). Waiting for the first sync is progress; a failed sync, a
-- lag above maxLagSeconds or no usable backup at the source is not (it still serves reads).
local standby = condition(conditions, "StandbyReady")
if standby ~= nil and standby.status ~= "True" then
  if standby.reason == "WaitingForSync" or standby.status == "Unknown" then
    hs.status = "Progressing"
  else
    hs.status = "Degraded"
  end
  hs.message = "Standby: " .. describe(standby, "StandbyReady is " .. tostring(standby.status))
  return hs
end

if obj.spec ~= nil and obj.spec.suspend == true then
  hs.status = "Suspended"
  hs.message = "spec.suspend is true"
  return hs
end

-- RagFlowCluster rolling out a new spec: ready (enough pods serve) but still progressing.
if ready ~= nil and ready.status == "True" and progressing ~= nil and progressing.status == "True" then
  hs.status = "Progressing"
  hs.message = describe(progressing, "Rolling out")
  return hs
end

if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = describe(ready, "Ready")
  if standby ~= nil then
    hs.message = "Standby (read-only): " .. describe(standby, "following its primary")
  end
  return hs
end

if ready == nil or ready.status == "Unknown" or
    (progressing ~= nil and progressing.status == "True") then
  hs.status = "Progressing"
  hs.message = describe(progressing, describe(ready, "Waiting for the Ready condition"))
  return hs
end

hs.status = "Degraded"
hs.message = describe(ready, "Not ready")
return hs
