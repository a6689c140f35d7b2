-- Webhook fan-out (src/cloud/webhooks.ts) looks for each tenant's recent notifications by time.
CREATE INDEX IF NOT EXISTS notifications_tenant_created ON notifications (tenant_id, created_at);
