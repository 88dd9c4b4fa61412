-- Each tenant's webhook secret: the key flows' `http` states sign their requests with
-- (X-Switchboard-Signature, HMAC-SHA256). Created on first use (an `http` state's first call, or
-- the business reading it through GET /api/v1/tenant/webhook-secret) and sealed at rest with the
-- server's secrets key, like provider tokens. NULL until then.
ALTER TABLE tenants ADD COLUMN webhook_secret bytea;
