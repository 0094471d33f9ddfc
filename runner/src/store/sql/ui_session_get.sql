-- The live session with id hash $1, with the credential it was opened with as it is now: the
-- key (enabled) and its tenant (enabled) for a tenant session. A tenant session whose key or
-- tenant was disabled comes back without `tenant_id`, and the caller ends it.
SELECT s.admin, s.key_hash, s.last_seen_at, s.expires_at,
       k.prefix AS key_prefix, k.role AS key_role,
       t.id AS tenant_id, t.name AS tenant_name, t.weight AS tenant_weight,
       t.created_at AS tenant_created_at, t.disabled_at AS tenant_disabled_at
FROM ui_sessions s
LEFT JOIN api_keys k
       ON NOT s.admin AND k.hash = s.key_hash AND k.tenant_id = s.tenant_id
      AND k.disabled_at IS NULL
LEFT JOIN tenants t ON t.id = k.tenant_id AND t.disabled_at IS NULL
WHERE s.id_hash = $1 AND s.expires_at > now()
