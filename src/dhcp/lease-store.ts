/**
 * Where DHCP keeps its leases, as DHCP needs it: declared here, by the code
 * that uses it; implemented in src/state/ (durable files, memory) and later
 * by a database. Everything is asynchronous, so an implementation may sit
 * behind a network round trip.
 */
import type { Lease } from './leases.js';

/** One change: the lease on an address as it now is, or its removal (keyed by address, as Kea's lease4). */
export interface LeaseChange {
  readonly ip: string;
  readonly lease: Lease | undefined;
}

/** What a commit writes, read when its write starts (so one write carries a whole moment's changes). */
export interface CommitSource {
  /** Changes since the previous write; called once, just before the write starts. */
  readonly changes: () => LeaseChange[];
  /** Every current lease, for an implementation that rewrites everything now and then. */
  readonly all: () => Lease[];
  /** The write that took `changes` failed: they are pending again. */
  readonly putBack?: (changes: readonly LeaseChange[]) => void;
}

export interface LeaseStore {
  /** Every stored lease, as the lease table starts from. */
  load(): Promise<Lease[]>;
  /**
   * Makes this moment's changes durable. Resolves only once they are (an ACK
   * waits for it: RFC 2131 section 4.3.2 wants the binding stored before the
   * ACK); rejects when they could not be written, with the changes put back.
   * Commits of the same moment share one write.
   */
  commit(src: CommitSource): Promise<void>;
  /** Waits for writes in flight, then lets go of the store. */
  close(): Promise<void>;
}

/** Reading leases beside the server that writes them (`bootd leases`). */
export interface LeaseReader {
  list(): Promise<Lease[]>;
}
