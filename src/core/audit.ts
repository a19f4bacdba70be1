// The audit trail: who did what, when, from where. Each event also feeds the metrics.
import type { Store } from '../store/store.ts';

export type AuditKind =
  | 'login'
  | 'login_failed'
  | 'session_revoked'
  | 'password_changed'
  | 'password_reset'
  | 'password_set_at_challenge'
  | 'password_set_by_admin'
  | 'password_rehashed'
  | 'key_withdrawn'
  | 'reset_code_sent'
  | 'reset_link_sent'
  | 'reset_request_ignored'
  | 'user_unlocked'
  | 'user_created'
  | 'user_disabled'
  | 'user_enabled'
  | 'user_deleted'
  | 'signed_out_everywhere'
  | 'users_imported'
  | 'user_updated_by_import'
  | 'user_migrated'
  | 'identity_collision_settled';

export interface AuditEvent {
  kind: AuditKind;
  userId: number | null;
  ip?: string;
  detail?: string;
}

export class Audit {
  constructor(
    private readonly store: Store,
    private readonly clock: () => number,
    private readonly onEvent: (kind: AuditKind) => void = () => {},
  ) {}

  /** Writes the event; pass the transaction's store to make it part of that transaction. */
  async record(event: AuditEvent, store: Store = this.store): Promise<void> {
    await store.audit({ at: this.clock(), userId: event.userId, kind: event.kind, ip: event.ip, detail: event.detail });
    this.onEvent(event.kind);
  }
}
