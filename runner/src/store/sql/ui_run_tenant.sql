-- The tenant that owns run $1 (the admin's view reads a run through its own tenant's scope).
SELECT t.id, t.name FROM runs r JOIN tenants t ON t.id = r.tenant_id WHERE r.id = $1
