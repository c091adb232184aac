// A protocol error that ends the session with a NOTIFICATION (RFC 4271 §6): code, subcode and the data field the
// RFC prescribes for that case.
import { describeNotification } from './messages.js';

export class NotificationError extends Error {
  constructor(
    readonly code: number,
    readonly subcode: number,
    readonly data: Uint8Array = new Uint8Array(0),
    detail?: string,
  ) {
    super(detail ? `${describeNotification(code, subcode)}: ${detail}` : describeNotification(code, subcode));
    this.name = 'NotificationError';
  }
}
