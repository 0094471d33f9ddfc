-- Runners keep the API keys they checked for up to a second (runner/src/api/key_cache.rs). Any
-- change to what a key grants (the key itself, its tenant, the tenant's limits) tells every
-- runner to forget them, whoever makes it: the API, the dashboard, or SQL by hand. Rare,
-- admin-made writes: one notification per statement.
CREATE FUNCTION sandfire_notify_keys() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('sandfire_keys', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER api_keys_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION sandfire_notify_keys();
CREATE TRIGGER tenants_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON tenants
    FOR EACH STATEMENT EXECUTE FUNCTION sandfire_notify_keys();
CREATE TRIGGER tenant_limits_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON tenant_limits
    FOR EACH STATEMENT EXECUTE FUNCTION sandfire_notify_keys();
