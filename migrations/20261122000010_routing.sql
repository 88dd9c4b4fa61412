-- Intake routing: teams of agents, agent availability, routing decisions on conversations, and
-- the `form` channel kind (public "contact us" forms).
--
-- A routing decision sends a conversation to one human (owner_kind 'human'), to a team's queue
-- (owner_kind 'none', team_id set), to the tenant's triage queue (a team with key 'triage',
-- created on first use), or back to the bot. The latest decision is stored on the conversation
-- (`routing`), and every decision is appended to `routing_decisions`.

-- Whether a human agent takes new conversations now. Off until the agent (or an admin, through
-- the API) says otherwise: routing never assigns work to someone who is not there.
ALTER TABLE agents ADD COLUMN available boolean NOT NULL DEFAULT false;
-- Lets other tables point at (tenant_id, agent) so a row cannot reference another tenant's agent.
ALTER TABLE agents ADD CONSTRAINT agents_tenant_id_id_key UNIQUE (tenant_id, id);

-- A team: a queue plus the agents who serve it.
--   strategy:        how an agent is chosen when a request names none.
--   max_concurrent:  open conversations an agent may own before routing skips them (a member may
--                    override it).
--   rr_last_agent:   the round-robin cursor: the member who got the last round-robin assignment.
--                    Read and advanced under the team row's lock (FOR UPDATE), so concurrent
--                    routings take turns instead of picking the same agent.
CREATE TABLE teams (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    key             text NOT NULL CHECK (key ~ '^[a-z0-9][a-z0-9_-]{0,63}$'),
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    strategy        text NOT NULL DEFAULT 'least_loaded'
                    CHECK (strategy IN ('round_robin', 'least_loaded', 'skill')),
    max_concurrent  integer NOT NULL DEFAULT 5 CHECK (max_concurrent BETWEEN 1 AND 1000),
    rr_last_agent   uuid,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, key),
    UNIQUE (tenant_id, id)
);
ALTER TABLE teams ENABLE ROW LEVEL SECURITY;
ALTER TABLE teams FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON teams USING (tenant_id = sb_tenant()) WITH CHECK (tenant_id = sb_tenant());

-- An agent's membership of a team, with the skills/labels they cover there. `position` orders
-- members (round-robin order and the final tie-break); skills are stored lower-case.
CREATE TABLE team_members (
    tenant_id       uuid NOT NULL,
    team_id         uuid NOT NULL,
    agent_id        uuid NOT NULL,
    position        integer NOT NULL,
    skills          text[] NOT NULL DEFAULT '{}',
    max_concurrent  integer CHECK (max_concurrent BETWEEN 1 AND 1000),
    PRIMARY KEY (team_id, agent_id),
    FOREIGN KEY (tenant_id, team_id) REFERENCES teams (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, agent_id) REFERENCES agents (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX team_members_agent ON team_members (agent_id);
ALTER TABLE team_members ENABLE ROW LEVEL SECURITY;
ALTER TABLE team_members FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON team_members USING (tenant_id = sb_tenant()) WITH CHECK (tenant_id = sb_tenant());

-- The conversation's team (the queue it waits in, or the team of the agent who holds it) and its
-- latest routing decision as the API shows it. Neither changes per message, so these columns and
-- the indexes below do not cost the per-message updates their HOT path (see migration 5).
ALTER TABLE conversations ADD COLUMN team_id uuid;
ALTER TABLE conversations ADD COLUMN routing jsonb;
-- Deleting a team forgets it on its conversations (only team_id: tenant_id stays).
ALTER TABLE conversations ADD CONSTRAINT conversations_team_fkey
    FOREIGN KEY (tenant_id, team_id) REFERENCES teams (tenant_id, id) ON DELETE SET NULL (team_id);
-- A team's queue: waiting conversations.
CREATE INDEX conversations_team_queue ON conversations (team_id)
    WHERE owner_kind = 'none' AND status <> 'closed';
-- An agent's load: open conversations they own (least-loaded routing counts these).
CREATE INDEX conversations_human_owner ON conversations (owner_agent_id)
    WHERE owner_agent_id IS NOT NULL AND status <> 'closed';

-- Every routing decision, in order: where the conversation went, by which rule, how sure the
-- classifier was, and why. Append-only from the application's point of view.
--   target:  agent (a human owns it) | queue (waits on a team) | triage | bot
--   reason:  the caller's reason (the flow or classifier); detail: what routing itself decided.
CREATE TABLE routing_decisions (
    id               uuid PRIMARY KEY,
    tenant_id        uuid NOT NULL,
    conversation_id  uuid NOT NULL,
    target           text NOT NULL CHECK (target IN ('agent', 'queue', 'triage', 'bot')),
    team_id          uuid,
    team_key         text,
    agent_id         uuid,
    strategy         text CHECK (strategy IN ('round_robin', 'least_loaded', 'skill')),
    skills           text[] NOT NULL DEFAULT '{}',
    category         text,
    priority         text CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
    language         text,
    confidence       real,
    min_confidence   real,
    reason           text NOT NULL,
    detail           text NOT NULL,
    decided_at       timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, conversation_id) REFERENCES conversations (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX routing_decisions_conversation ON routing_decisions (conversation_id, decided_at, id);
ALTER TABLE routing_decisions ENABLE ROW LEVEL SECURITY;
ALTER TABLE routing_decisions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON routing_decisions USING (tenant_id = sb_tenant()) WITH CHECK (tenant_id = sb_tenant());

-- Public forms are a channel kind of their own: their public key is what a "contact us" form
-- posts to.
ALTER TABLE channels DROP CONSTRAINT channels_kind_check;
ALTER TABLE channels ADD CONSTRAINT channels_kind_check
    CHECK (kind IN ('webchat', 'whatsapp_cloud', 'twilio', 'telegram', 'email', 'form'));

GRANT SELECT, INSERT, UPDATE, DELETE ON teams, team_members, routing_decisions TO switchboard_app;
