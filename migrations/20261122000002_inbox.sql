-- Contacts, conversations and messages: the inbox.
--
-- Composite foreign keys (tenant_id, x_id) make it impossible for a row of one tenant to point at
-- another tenant's row even if application code got an id wrong.

CREATE TABLE contacts (
    id            uuid PRIMARY KEY,
    tenant_id     uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    display_name  text,
    email         text,
    phone         text,
    attributes    jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, id)
);
ALTER TABLE contacts ENABLE ROW LEVEL SECURITY;
ALTER TABLE contacts FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON contacts USING (tenant_id = sb_tenant()) WITH CHECK (tenant_id = sb_tenant());

-- How a contact is reached on one channel: a phone number, a Telegram chat id, an email address,
-- or (web chat) a hash of the visitor token. Ingest inserts the identity and its contact in one
-- statement, hence the deferred foreign key.
CREATE TABLE contact_identities (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL,
    contact_id  uuid NOT NULL,
    channel_id  uuid NOT NULL,
    address     text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (channel_id, address),
    FOREIGN KEY (tenant_id, contact_id) REFERENCES contacts (tenant_id, id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    FOREIGN KEY (tenant_id, channel_id) REFERENCES channels (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX contact_identities_contact ON contact_identities (contact_id);
ALTER TABLE contact_identities ENABLE ROW LEVEL SECURITY;
ALTER TABLE contact_identities FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON contact_identities USING (tenant_id = sb_tenant()) WITH CHECK (tenant_id = sb_tenant());

-- A conversation between one contact and the business on one channel.
--   status:     open (bot or human is handling it), handoff (waiting for / with a human), closed.
--   owner_kind: bot | human | none (in the queue). A human owner holds a lease that expires.
--   flow_state: the agent's state machine (current state, slots); `version` increments on every
--               write so a stale writer is detected (optimistic concurrency).
--   last_seq:   highest message sequence number; messages get last_seq+1.. under the row lock,
--               which is what makes per-conversation order total and resumable.
CREATE TABLE conversations (
    id                 uuid PRIMARY KEY,
    tenant_id          uuid NOT NULL,
    channel_id         uuid NOT NULL,
    contact_id         uuid NOT NULL,
    status             text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'handoff', 'closed')),
    owner_kind         text NOT NULL DEFAULT 'bot' CHECK (owner_kind IN ('bot', 'human', 'none')),
    owner_agent_id     uuid,
    owner_lease_until  timestamptz,
    flow_key           text,
    flow_version       integer,
    flow_state         jsonb,
    version            bigint NOT NULL DEFAULT 0,
    last_seq           bigint NOT NULL DEFAULT 0,
    last_message_at    timestamptz NOT NULL DEFAULT now(),
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, channel_id) REFERENCES channels (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, contact_id) REFERENCES contacts (tenant_id, id) ON DELETE CASCADE,
    CHECK ((owner_kind = 'human') = (owner_agent_id IS NOT NULL))
);
-- At most one conversation per contact and channel is not closed; ingest relies on it to find or
-- open the conversation without races between nodes.
CREATE UNIQUE INDEX conversations_one_active ON conversations (channel_id, contact_id) WHERE status <> 'closed';
CREATE INDEX conversations_tenant_recent ON conversations (tenant_id, last_message_at DESC, id DESC);
ALTER TABLE conversations ENABLE ROW LEVEL SECURITY;
ALTER TABLE conversations FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON conversations USING (tenant_id = sb_tenant()) WITH CHECK (tenant_id = sb_tenant());

-- One message in or out. Ids are UUIDv7 (time ordered); `seq` orders messages within their
-- conversation. Inbound messages carry the provider's id in external_id: the unique index makes a
-- provider's retry of the same message a no-op.
CREATE TABLE messages (
    id                   uuid PRIMARY KEY,
    tenant_id            uuid NOT NULL,
    conversation_id      uuid NOT NULL,
    channel_id           uuid NOT NULL,
    seq                  bigint NOT NULL,
    direction            text NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    author_kind          text NOT NULL CHECK (author_kind IN ('contact', 'bot', 'agent', 'system')),
    author_agent_id      uuid,
    body                 text NOT NULL,
    -- Structured extras: quick-reply options, attachments, the flow state that produced it.
    content              jsonb NOT NULL DEFAULT '{}'::jsonb,
    external_id          text,
    provider_message_id  text,
    delivery_status      text NOT NULL CHECK (delivery_status IN ('received', 'queued', 'sent', 'delivered', 'read', 'failed')),
    delivery_error       text,
    created_at           timestamptz NOT NULL DEFAULT now(),
    UNIQUE (conversation_id, seq),
    FOREIGN KEY (tenant_id, conversation_id) REFERENCES conversations (tenant_id, id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX messages_inbound_dedupe ON messages (channel_id, external_id) WHERE external_id IS NOT NULL;
ALTER TABLE messages ENABLE ROW LEVEL SECURITY;
ALTER TABLE messages FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON messages USING (tenant_id = sb_tenant()) WITH CHECK (tenant_id = sb_tenant());
