-- Flow versions: published history is immutable, enforced by the database.
--
-- A published or archived row may change only its status (and published_at): its source, key,
-- version and tenant are frozen. A published row cannot be deleted; archiving is a status change.
-- The one exception is a cascade from deleting the tenant itself (the foreign key's action runs
-- as a nested trigger, so pg_trigger_depth() > 1).
CREATE FUNCTION flows_guard_history() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.status = 'published' AND pg_trigger_depth() <= 1 THEN
            RAISE EXCEPTION 'flow % version % is published and cannot be deleted (archive it instead)',
                OLD.flow_key, OLD.version
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        RETURN OLD;
    END IF;
    IF OLD.status IN ('published', 'archived')
       AND (NEW.source IS DISTINCT FROM OLD.source
            OR NEW.flow_key IS DISTINCT FROM OLD.flow_key
            OR NEW.version IS DISTINCT FROM OLD.version
            OR NEW.tenant_id IS DISTINCT FROM OLD.tenant_id) THEN
        RAISE EXCEPTION 'flow % version % is %; its source, key and version are immutable',
            OLD.flow_key, OLD.version, OLD.status
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER flows_immutable_history
    BEFORE UPDATE OR DELETE ON flows
    FOR EACH ROW EXECUTE FUNCTION flows_guard_history();

-- "Latest published version of a key" (the registry's hot lookup for every new conversation).
CREATE INDEX flows_published_latest ON flows (tenant_id, flow_key, version DESC)
    WHERE status = 'published';
