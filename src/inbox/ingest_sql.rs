//! The set-based SQL behind ingest: a constant number of statements per tenant per batch,
//! whatever the batch size (arrays in, `unnest` in SQL). Runs inside the caller's transaction with
//! the tenant already set.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgConnection;

use super::model::{Accepted, Inbound, MessageView};
use crate::ids::{ChannelId, ContactId, ConversationId, MessageId, TenantId};
use crate::jobs::JobKind;

/// One message's result: ids, plus the view when it was newly stored.
#[derive(Debug, Clone)]
pub struct Stored {
    /// Ids and the duplicate flag.
    pub accepted: Accepted,
    /// The stored message (None for duplicates).
    pub view: Option<MessageView>,
}

type DedupeKey = (ChannelId, String);

/// Store a tenant's share of a batch. Results follow `group`'s order.
pub async fn ingest_tenant_group(
    conn: &mut PgConnection,
    tenant: TenantId,
    group: &[&Inbound],
) -> Result<Vec<Stored>, sqlx::Error> {
    let mut existing = find_existing_messages(conn, group).await?;
    // The first occurrence of each key in the batch is stored; later ones are duplicates of it.
    let mut first_of: HashMap<DedupeKey, usize> = HashMap::new();
    let mut fresh: Vec<usize> = Vec::new();
    for (i, inbound) in group.iter().enumerate() {
        let key = dedupe_key(inbound);
        if existing.contains_key(&key) || first_of.contains_key(&key) {
            continue;
        }
        first_of.insert(key, i);
        fresh.push(i);
    }
    let mut views: HashMap<usize, MessageView> = HashMap::new();
    if !fresh.is_empty() {
        let contacts = resolve_contacts(conn, tenant, group, &fresh).await?;
        let conversations = resolve_conversations(conn, tenant, group, &fresh, &contacts).await?;
        let contacts = contacts.ids;
        let planned = plan_messages(group, &fresh, &contacts, &conversations);
        let inserted = insert_messages(conn, tenant, group, &planned).await?;
        for p in planned {
            if inserted.contains(&p.view.id) {
                views.insert(p.index, p.view);
            }
        }
        // Lost a race with another node for the same external id: read back the winner.
        if views.len() < fresh.len() {
            existing = find_existing_messages(conn, group).await?;
        }
    }
    let fresh_accepted: HashMap<DedupeKey, Accepted> = views
        .iter()
        .map(|(&i, v)| (dedupe_key(group[i]), accepted_of(v, true)))
        .collect();
    group
        .iter()
        .enumerate()
        .map(|(i, inbound)| {
            if let Some(view) = views.remove(&i) {
                return Ok(Stored {
                    accepted: accepted_of(&view, false),
                    view: Some(view),
                });
            }
            let key = dedupe_key(inbound);
            let accepted = existing
                .get(&key)
                .or_else(|| fresh_accepted.get(&key))
                .copied()
                .ok_or_else(|| {
                    sqlx::Error::Protocol(format!(
                        "message {} was neither stored nor found",
                        inbound.external_id
                    ))
                })?;
            Ok(Stored {
                accepted,
                view: None,
            })
        })
        .collect()
}

fn dedupe_key(inbound: &Inbound) -> DedupeKey {
    (inbound.channel_id, inbound.external_id.clone())
}

fn accepted_of(view: &MessageView, duplicate: bool) -> Accepted {
    Accepted {
        message_id: view.id,
        conversation_id: view.conversation_id,
        seq: view.seq,
        duplicate,
    }
}

async fn find_existing_messages(
    conn: &mut PgConnection,
    group: &[&Inbound],
) -> Result<HashMap<DedupeKey, Accepted>, sqlx::Error> {
    let channels: Vec<ChannelId> = group.iter().map(|i| i.channel_id).collect();
    let external: Vec<&str> = group.iter().map(|i| i.external_id.as_str()).collect();
    // `external_id IS NOT NULL` is restated so the planner can use the partial dedupe index: it
    // cannot infer the predicate from the join condition, and without it scans every message.
    let rows: Vec<(ChannelId, String, MessageId, ConversationId, i64)> = sqlx::query_as(
        "SELECT m.channel_id, m.external_id, m.id, m.conversation_id, m.seq \
         FROM messages m \
         JOIN unnest($1::uuid[], $2::text[]) AS k(channel_id, external_id) \
           ON m.channel_id = k.channel_id AND m.external_id = k.external_id \
         WHERE m.external_id IS NOT NULL",
    )
    .bind(&channels)
    .bind(&external)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(channel, ext, id, conv, seq)| {
            let accepted = Accepted {
                message_id: id,
                conversation_id: conv,
                seq,
                duplicate: true,
            };
            ((channel, ext), accepted)
        })
        .collect())
}

type IdentityKey = (ChannelId, String);

/// The contact behind each sender, and which of them this batch created.
struct Contacts {
    ids: HashMap<IdentityKey, ContactId>,
    created: HashSet<ContactId>,
}

/// Find or create the contact behind each sender.
async fn resolve_contacts(
    conn: &mut PgConnection,
    tenant: TenantId,
    group: &[&Inbound],
    fresh: &[usize],
) -> Result<Contacts, sqlx::Error> {
    let mut wanted: Vec<IdentityKey> = Vec::new();
    let mut names: HashMap<IdentityKey, Option<String>> = HashMap::new();
    for &i in fresh {
        let key = (group[i].channel_id, group[i].sender.address.clone());
        if names
            .insert(key.clone(), group[i].sender.display_name.clone())
            .is_none()
        {
            wanted.push(key);
        }
    }
    let mut found = select_identities(conn, &wanted).await?;
    let mut created = HashSet::new();
    let missing: Vec<&IdentityKey> = wanted.iter().filter(|k| !found.contains_key(*k)).collect();
    if !missing.is_empty() {
        let contact_ids: Vec<ContactId> = missing.iter().map(|_| ContactId::new()).collect();
        let identity_ids: Vec<uuid::Uuid> = missing.iter().map(|_| uuid::Uuid::now_v7()).collect();
        let channels: Vec<ChannelId> = missing.iter().map(|k| k.0).collect();
        let addresses: Vec<&str> = missing.iter().map(|k| k.1.as_str()).collect();
        let display: Vec<Option<String>> = missing
            .iter()
            .map(|k| names.get(*k).cloned().flatten())
            .collect();
        // Insert the identity first; only identities that really got inserted get a contact, so a
        // concurrent node creating the same identity leaves no orphan contact behind. The
        // inserted identities come back; only those lost to such a race are read again.
        let inserted: Vec<(ChannelId, String, ContactId)> = sqlx::query_as(
            "WITH input AS ( \
               SELECT * FROM unnest($2::uuid[], $3::uuid[], $4::uuid[], $5::text[], $6::text[]) \
                 AS t(contact_id, identity_id, channel_id, address, display_name)), \
             ins AS ( \
               INSERT INTO contact_identities (id, tenant_id, contact_id, channel_id, address) \
               SELECT identity_id, $1, contact_id, channel_id, address FROM input \
               ON CONFLICT (channel_id, address) DO NOTHING \
               RETURNING channel_id, address, contact_id), \
             contact AS ( \
               INSERT INTO contacts (id, tenant_id, display_name) \
               SELECT i.contact_id, $1, i.display_name FROM input i JOIN ins USING (contact_id)) \
             SELECT channel_id, address, contact_id FROM ins",
        )
        .bind(tenant)
        .bind(&contact_ids)
        .bind(&identity_ids)
        .bind(&channels)
        .bind(&addresses)
        .bind(&display)
        .fetch_all(&mut *conn)
        .await?;
        created.extend(inserted.iter().map(|(_, _, id)| *id));
        found.extend(inserted.into_iter().map(|(c, a, id)| ((c, a), id)));
        let raced: Vec<IdentityKey> = missing
            .into_iter()
            .filter(|k| !found.contains_key(*k))
            .cloned()
            .collect();
        if !raced.is_empty() {
            found.extend(select_identities(conn, &raced).await?);
        }
    }
    Ok(Contacts {
        ids: found,
        created,
    })
}

async fn select_identities(
    conn: &mut PgConnection,
    keys: &[IdentityKey],
) -> Result<HashMap<IdentityKey, ContactId>, sqlx::Error> {
    let channels: Vec<ChannelId> = keys.iter().map(|k| k.0).collect();
    let addresses: Vec<&str> = keys.iter().map(|k| k.1.as_str()).collect();
    let rows: Vec<(ChannelId, String, ContactId)> = sqlx::query_as(
        "SELECT ci.channel_id, ci.address, ci.contact_id FROM contact_identities ci \
         JOIN unnest($1::uuid[], $2::text[]) AS k(channel_id, address) \
           ON ci.channel_id = k.channel_id AND ci.address = k.address",
    )
    .bind(&channels)
    .bind(&addresses)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|(c, a, id)| ((c, a), id)).collect())
}

/// A conversation locked for this batch, with the seq it had.
#[derive(Debug, Clone, Copy)]
struct LockedConversation {
    id: ConversationId,
    last_seq: i64,
}

type ConversationKey = (ChannelId, ContactId);

/// Find or open the active conversation of each contact on its channel, locking them in id order
/// and reserving sequence numbers for this batch's messages in the same statement.
async fn resolve_conversations(
    conn: &mut PgConnection,
    tenant: TenantId,
    group: &[&Inbound],
    fresh: &[usize],
    contacts: &Contacts,
) -> Result<HashMap<ConversationKey, LockedConversation>, sqlx::Error> {
    let mut counts: HashMap<ConversationKey, i64> = HashMap::new();
    let mut open_as: HashMap<ConversationKey, ConversationId> = HashMap::new();
    let mut wanted: Vec<ConversationKey> = Vec::new();
    for &i in fresh {
        let ident = (group[i].channel_id, group[i].sender.address.clone());
        if let Some(&contact) = contacts.ids.get(&ident) {
            let key = (group[i].channel_id, contact);
            let n = counts.entry(key).or_insert(0);
            if *n == 0 {
                wanted.push(key);
            }
            *n += 1;
            if let Some(id) = group[i].open_as {
                open_as.entry(key).or_insert(id);
            }
        }
    }
    // A contact created by this batch has no conversation yet: no lock to try for it.
    let (new, known): (Vec<ConversationKey>, Vec<ConversationKey>) = wanted
        .into_iter()
        .partition(|k| contacts.created.contains(&k.1));
    let mut found = lock_and_reserve(conn, &known, &counts).await?;
    let missing: Vec<ConversationKey> = known
        .into_iter()
        .filter(|k| !found.contains_key(k))
        .chain(new)
        .collect();
    if !missing.is_empty() {
        let opening = Opening {
            counts: &counts,
            open_as: &open_as,
        };
        found.extend(open_conversations(conn, tenant, &missing, opening).await?);
        let raced: Vec<ConversationKey> = missing
            .into_iter()
            .filter(|k| !found.contains_key(k))
            .collect();
        if !raced.is_empty() {
            found.extend(lock_and_reserve(conn, &raced, &counts).await?);
        }
    }
    Ok(found)
}

/// What opening conversations needs per key: its message count, and the id its first message
/// asked for, if any.
struct Opening<'a> {
    counts: &'a HashMap<ConversationKey, i64>,
    open_as: &'a HashMap<ConversationKey, ConversationId>,
}

/// Open a conversation for each of `keys` with its sequence numbers already reserved. A new row
/// is this transaction's own until commit, so it needs no lock; a key whose conversation another
/// transaction opened meanwhile is left out (the unique index made this insert wait for that
/// one's commit), for [`lock_and_reserve`] to take.
async fn open_conversations(
    conn: &mut PgConnection,
    tenant: TenantId,
    keys: &[ConversationKey],
    opening: Opening<'_>,
) -> Result<HashMap<ConversationKey, LockedConversation>, sqlx::Error> {
    let ids: Vec<ConversationId> = keys
        .iter()
        .map(|k| {
            opening
                .open_as
                .get(k)
                .copied()
                .unwrap_or_else(ConversationId::new)
        })
        .collect();
    let (channels, contacts, n) = key_columns(keys, opening.counts);
    let rows: Vec<(ConversationId, ChannelId, ContactId)> = sqlx::query_as(
        "INSERT INTO conversations (id, tenant_id, channel_id, contact_id, last_seq) \
         SELECT id, $1, channel_id, contact_id, n \
         FROM unnest($2::uuid[], $3::uuid[], $4::uuid[], $5::int8[]) AS t(id, channel_id, contact_id, n) \
         ON CONFLICT (channel_id, contact_id) WHERE status <> 'closed' DO NOTHING \
         RETURNING id, channel_id, contact_id",
    )
    .bind(tenant)
    .bind(&ids)
    .bind(&channels)
    .bind(&contacts)
    .bind(&n)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, channel, contact)| ((channel, contact), LockedConversation { id, last_seq: 0 }))
        .collect())
}

/// `keys` as columns for `unnest`: channels, contacts, and each key's count of new messages.
fn key_columns(
    keys: &[ConversationKey],
    counts: &HashMap<ConversationKey, i64>,
) -> (Vec<ChannelId>, Vec<ContactId>, Vec<i64>) {
    let channels = keys.iter().map(|k| k.0).collect();
    let contacts = keys.iter().map(|k| k.1).collect();
    let n = keys
        .iter()
        .map(|k| counts.get(k).copied().unwrap_or(0))
        .collect();
    (channels, contacts, n)
}

/// Lock the active conversations of `keys` (in id order, so concurrent batches cannot deadlock)
/// and advance each one's `last_seq` by its number of new messages, in one statement. The
/// returned `last_seq` is the value before the advance: the batch numbers its messages after it.
async fn lock_and_reserve(
    conn: &mut PgConnection,
    keys: &[ConversationKey],
    counts: &HashMap<ConversationKey, i64>,
) -> Result<HashMap<ConversationKey, LockedConversation>, sqlx::Error> {
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    let (channels, contacts, n) = key_columns(keys, counts);
    let rows: Vec<(ConversationId, ChannelId, ContactId, i64)> = sqlx::query_as(
        "WITH k AS (SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::int8[]) AS k(channel_id, contact_id, n)), \
         locked AS ( \
           SELECT c.id, k.n FROM conversations c \
           JOIN k ON c.channel_id = k.channel_id AND c.contact_id = k.contact_id \
           WHERE c.status <> 'closed' ORDER BY c.id FOR UPDATE OF c) \
         UPDATE conversations c \
            SET last_seq = c.last_seq + locked.n, last_message_at = now(), updated_at = now() \
         FROM locked WHERE c.id = locked.id \
         RETURNING c.id, c.channel_id, c.contact_id, c.last_seq - locked.n",
    )
    .bind(&channels)
    .bind(&contacts)
    .bind(&n)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, channel, contact, last_seq)| {
            ((channel, contact), LockedConversation { id, last_seq })
        })
        .collect())
}

struct Planned {
    index: usize,
    external_id: String,
    view: MessageView,
}

/// Assign ids and sequence numbers in arrival order.
fn plan_messages(
    group: &[&Inbound],
    fresh: &[usize],
    contacts: &HashMap<IdentityKey, ContactId>,
    conversations: &HashMap<ConversationKey, LockedConversation>,
) -> Vec<Planned> {
    let mut next_seq: HashMap<ConversationId, i64> = HashMap::new();
    let mut planned = Vec::with_capacity(fresh.len());
    let now: DateTime<Utc> = Utc::now();
    for &i in fresh {
        let inbound = group[i];
        let identity = (inbound.channel_id, inbound.sender.address.clone());
        let Some(conv) = contacts
            .get(&identity)
            .and_then(|contact| conversations.get(&(inbound.channel_id, *contact)))
        else {
            continue;
        };
        let seq = next_seq.entry(conv.id).or_insert(conv.last_seq);
        *seq += 1;
        planned.push(Planned {
            index: i,
            external_id: inbound.external_id.clone(),
            view: MessageView {
                id: MessageId::new(),
                conversation_id: conv.id,
                seq: *seq,
                direction: "inbound".into(),
                author_kind: "contact".into(),
                author_agent_id: None,
                body: inbound.body.clone(),
                content: inbound.content.clone(),
                delivery_status: "received".into(),
                created_at: now,
            },
        });
    }
    planned
}

/// Insert the planned messages, and queue an open `agent_turn` job (see `agent::turn_queue`) for
/// each conversation that got one and has no open turn queued already: that turn answers them
/// all. A message lost to a concurrent duplicate queues nothing. Returns the inserted ids.
async fn insert_messages(
    conn: &mut PgConnection,
    tenant: TenantId,
    group: &[&Inbound],
    planned: &[Planned],
) -> Result<HashSet<MessageId>, sqlx::Error> {
    let ids: Vec<MessageId> = planned.iter().map(|p| p.view.id).collect();
    let convs: Vec<ConversationId> = planned.iter().map(|p| p.view.conversation_id).collect();
    let channels: Vec<ChannelId> = planned.iter().map(|p| group[p.index].channel_id).collect();
    let seqs: Vec<i64> = planned.iter().map(|p| p.view.seq).collect();
    let bodies: Vec<&str> = planned.iter().map(|p| p.view.body.as_str()).collect();
    let contents: Vec<Value> = planned.iter().map(|p| p.view.content.clone()).collect();
    let externals: Vec<&str> = planned.iter().map(|p| p.external_id.as_str()).collect();
    let created: Vec<DateTime<Utc>> = planned.iter().map(|p| p.view.created_at).collect();
    // Messages and their turns in one statement. The check for a queued open turn runs while
    // this transaction holds the conversation's row lock, which the turn also takes before
    // reading what it answers: either it will read these messages, or it has committed and is
    // no longer queued and open, and a new one is queued here.
    let inserted: Vec<MessageId> = sqlx::query_scalar(
        "WITH ins AS ( \
           INSERT INTO messages (id, tenant_id, conversation_id, channel_id, seq, direction, author_kind, \
                                 body, content, external_id, delivery_status, created_at) \
           SELECT t.id, $1, t.conversation_id, t.channel_id, t.seq, 'inbound', 'contact', \
                  t.body, t.content, t.external_id, 'received', t.created_at \
           FROM unnest($2::uuid[], $3::uuid[], $4::uuid[], $5::int8[], $6::text[], $7::jsonb[], $8::text[], \
                       $9::timestamptz[]) \
                AS t(id, conversation_id, channel_id, seq, body, content, external_id, created_at) \
           ON CONFLICT (channel_id, external_id) WHERE external_id IS NOT NULL DO NOTHING \
           RETURNING id, conversation_id, seq), \
         queued AS ( \
           INSERT INTO jobs (tenant_id, kind, payload, ordering_key) \
           SELECT $1, $10, \
                  jsonb_build_object('message_id', f.id, 'conversation_id', f.conversation_id, 'open', true), \
                  f.conversation_id \
           FROM (SELECT DISTINCT ON (conversation_id) id, conversation_id \
                 FROM ins ORDER BY conversation_id, seq) f \
           WHERE NOT EXISTS ( \
             SELECT 1 FROM jobs j \
             WHERE j.ordering_key = f.conversation_id AND j.kind = $10 AND j.status = 'queued' \
               AND j.payload ? 'open') \
           ORDER BY f.conversation_id) \
         SELECT id FROM ins",
    )
    .bind(tenant)
    .bind(&ids)
    .bind(&convs)
    .bind(&channels)
    .bind(&seqs)
    .bind(&bodies)
    .bind(&contents)
    .bind(&externals)
    .bind(&created)
    .bind(JobKind::AgentTurn.as_str())
    .fetch_all(&mut *conn)
    .await?;
    Ok(inserted.into_iter().collect())
}
