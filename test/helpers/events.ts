/**
 * Transfers as the servers publish them (src/events/types.ts), flattened for
 * assertions: the TFTP and HTTP details next to the common fields.
 */
import type { BootEvent, EventSink, TransferFinishedEvent } from '../../src/events/types.js';

export type FlatTransfer = Omit<TransferFinishedEvent, 'tftp' | 'http'> & {
  readonly blksize?: number;
  readonly windowsize?: number;
  readonly retransmits?: number;
  readonly timeouts?: number;
  readonly pumpedAcks?: number;
  readonly method?: string;
  readonly status?: number;
};

export function flat(e: TransferFinishedEvent): FlatTransfer {
  const { tftp, http, ...rest } = e;
  return { ...rest, ...tftp, ...http };
}

/** A sink that keeps every finished transfer (flattened) in `into`. */
export function transfersInto(into: FlatTransfer[]): EventSink {
  return {
    publish: (e: BootEvent) => {
      if (e.type === 'transfer.finished') into.push(flat(e));
    },
  };
}
