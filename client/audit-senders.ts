/**
 * Who sent a control that named no one: the workflow records a control without `{ identity }`
 * (Temporal's own CLI, a hand-made client) as UNKNOWN_IDENTITY, as its handlers cannot see the
 * sender. The server can: every signal and accepted update in the history carries the Temporal
 * client identity of its sender (the CLI sends `temporal-cli:$USER@$HOST`, or its `--identity`).
 *
 * A workflow task handles the signals that arrived before it started; its memo upserts (one per
 * audit entry) follow its completion. So an entry without an identity is matched, in order, to
 * a message of the same control that task handled. Messages a task handled without an entry
 * (node reports, refused signals past the recorded few) are dropped with the next task.
 */
import type { temporal } from '@temporalio/proto';
import { UNKNOWN_IDENTITY, type AuditEntry } from '../core/audit.ts';
import { CONTROL_SIGNALS } from '../core/refused-signals.ts';

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

/** The action each control message (signal or update, by name) is recorded as. */
const MESSAGE_ACTIONS: Readonly<Record<string, AuditEntry['action']>> = {
  ...Object.fromEntries(Object.entries(CONTROL_SIGNALS).map(([name, { action }]) => [name, action])),
  replaceSpec: 'replace-spec',
  announceCancel: 'cancel',
  queueRate: 'set-queue-rate',
};

type Message = { eventId: number; action: AuditEntry['action']; identity: string; kind: 'signal' | 'update' };

export class MessageSenders {
  /** Arrived, not yet handled by a completed workflow task. */
  private arrived: Message[] = [];
  /** Handled by the last completed workflow task, not yet matched to an entry. */
  private handled: Message[] = [];

  /** Takes in one event of the history, in order. */
  see(event: HistoryEvent): void {
    const id = Number(event.eventId ?? 0);
    const signal = event.workflowExecutionSignaledEventAttributes;
    if (signal) this.arrive(id, signal.signalName, signal.identity, 'signal');
    const completed = event.workflowTaskCompletedEventAttributes;
    if (completed) {
      const started = Number(completed.startedEventId ?? 0);
      this.handled = this.arrived.filter((m) => m.eventId < started);
      this.arrived = this.arrived.filter((m) => m.eventId > started);
    }
    // An update is accepted by the task that completed just before it: it is handled there.
    const accepted = event.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest;
    if (accepted) {
      const action = MESSAGE_ACTIONS[accepted.input?.name ?? ''];
      if (action !== undefined && accepted.meta?.identity) this.handled.push({ eventId: id, action, identity: accepted.meta.identity, kind: 'update' });
    }
  }

  /** The entry as recorded, or with its sender's Temporal identity when it recorded none. */
  attribute(entry: AuditEntry): AuditEntry {
    if (entry.identity !== UNKNOWN_IDENTITY) return entry;
    const at = this.handled.findIndex((m) => m.action === entry.action);
    if (at < 0) return entry;
    const [message] = this.handled.splice(at, 1);
    return { ...entry, identity: `${message!.identity} (from the ${message!.kind}: its Temporal client identity)` };
  }

  private arrive(eventId: number, name: string | null | undefined, identity: string | null | undefined, kind: Message['kind']): void {
    const action = MESSAGE_ACTIONS[name ?? ''];
    if (action !== undefined && identity) this.arrived.push({ eventId, action, identity, kind });
  }
}
