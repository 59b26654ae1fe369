/**
 * Everything that happens in bootd, as one typed union: the servers publish
 * these on the bus (./bus.ts) and subscribers (the after-boot tracker today;
 * metrics, the dashboard and a database later) read them. Plain data only:
 * this module imports nothing, so every folder may depend on it.
 */

/** A DHCP message bootd received or sent, with who the client is. */
export interface DhcpMessageEvent {
  readonly type: 'dhcp';
  /** discover, decline, release and inform are received; offer, ack and nak are sent. */
  readonly message: 'discover' | 'offer' | 'ack' | 'nak' | 'decline' | 'release' | 'inform';
  readonly mac: string;
  /** Option 61 as lower-case hex, null when the client sent none. */
  readonly clientId: string | null;
  /** The address offered, acknowledged, declined or released; null where none (discover, nak, inform). */
  readonly ip: string | null;
  /** Client system architecture (option 93), null when absent. */
  readonly arch: number | null;
  readonly vendorClass: string | null;
  /** giaddr of a relayed message, null when it came from the local segment. */
  readonly relay: string | null;
  /** Vendor class PXEClient: a firmware PXE stack (or iPXE). */
  readonly pxe: boolean;
  readonly userClassIpxe: boolean;
  /** The boot file handed out (offer and ack), null when none. */
  readonly bootFile: string | null;
  /** Why a NAK was sent; null for every other message. */
  readonly reason: string | null;
}

export type TransferProtocol = 'tftp' | 'http' | 'upload' | 'machine';

export interface TransferStartedEvent {
  readonly type: 'transfer.started';
  readonly protocol: TransferProtocol;
  readonly direction: 'read' | 'write';
  readonly peer: string;
  readonly file: string;
}

export interface TransferFinishedEvent {
  readonly type: 'transfer.finished';
  readonly protocol: TransferProtocol;
  readonly direction: 'read' | 'write';
  readonly peer: string;
  readonly file: string;
  readonly bytes: number;
  readonly durationMs: number;
  /** complete, aborted, timeout, refused, probe-aborted, ... as the server names it. */
  readonly outcome: string;
  /** The file's whole size (reads), as far as known. */
  readonly size?: number;
  /** Where a complete upload now lies (write transfers). */
  readonly stored?: string;
  /** TFTP only: what was negotiated and how the link behaved. */
  readonly tftp?: { readonly blksize: number; readonly windowsize: number; readonly retransmits: number; readonly timeouts: number; readonly pumpedAcks?: number };
  /** HTTP only: the method (HEAD transfers are not boots) and the status sent. */
  readonly http?: { readonly method: string; readonly status: number };
  /** Why it ended so, when not complete. */
  readonly detail?: string;
}

export interface HostPhaseEvent {
  readonly type: 'host.phase';
  readonly host: string;
  readonly boot: string;
  readonly phase: string;
  readonly ip: string | null;
  /** The image the boot runs (name@version), null while not yet known. */
  readonly image: string | null;
}

export interface SshUpEvent {
  readonly type: 'host.ssh';
  readonly host: string;
  readonly boot: string;
  readonly port: number;
  readonly afterMs: number;
}

export interface SmokeStartedEvent {
  readonly type: 'smoke.started';
  readonly host: string;
  readonly boot: string | null;
}

export interface SmokeFinishedEvent {
  readonly type: 'smoke.finished';
  readonly host: string;
  readonly boot: string | null;
  readonly ok: boolean;
  readonly passed: number;
  readonly failed: number;
  readonly durationMs: number;
  readonly error?: string;
}

export interface InventoryEvent {
  readonly type: 'inventory.stored' | 'inventory.rejected';
  readonly host: string;
  readonly bytes: number;
  readonly error?: string;
}

export interface ImageBuildEvent {
  readonly type: 'image.build';
  readonly image: string;
  /** `step`: a build step began (`step` names it, `index` of `total`). */
  readonly state: 'started' | 'step' | 'finished' | 'failed';
  readonly step?: string;
  readonly index?: number;
  readonly total?: number;
  readonly version?: string;
  readonly durationMs?: number;
  readonly error?: string;
}

export interface HostsReloadEvent {
  readonly type: 'hosts.reload';
  readonly ok: boolean;
  /** Hosts now served (the last good set when ok is false). */
  readonly hosts: number;
  /** Problems found in files (each names file, line, key); the files in error keep their last good hosts. */
  readonly issues: readonly string[];
  /** How many hosts files are in error (they keep serving their last good hosts). */
  readonly filesInError: number;
  /** Why the folder could not be read at all (ok false). */
  readonly error?: string;
}

export interface ServerStateEvent {
  readonly type: 'server';
  readonly server: string;
  readonly state: 'started' | 'stopped' | 'failed';
  readonly listen?: string;
  readonly error?: string;
}

/** An operator's action through the admin listener (the dashboard or its API), recorded whatever its result. */
export interface AdminActionEvent {
  readonly type: 'admin.action';
  /** smoke, image.current, machine.open, machine.close */
  readonly action: string;
  readonly target: string;
  readonly peer: string;
  readonly ok: boolean;
  readonly detail?: string;
}

/**
 * Another instance sharing this one's database changed a host's record or
 * inventory (a boot it served, a smoke result): re-read it. Published by the
 * PostgreSQL host store on its notification (src/state/pg/host-records.ts).
 */
export interface RemoteHostChangeEvent {
  readonly type: 'host.remote';
  readonly host: string;
  readonly instance: string;
}

/** A host asked for its boot config while its image was on its way (fetched from the image origin): it waits and asks again. */
export interface HostWaitEvent {
  readonly type: 'host.wait';
  readonly host: string;
  readonly mac: string | null;
  readonly reason: string;
}

/** An image version fetched from the image origin (--image-origin): started, finished (verified, published) or failed. */
export interface ImageFetchEvent {
  readonly type: 'image.fetch';
  readonly image: string;
  readonly version: string | null;
  readonly state: 'started' | 'finished' | 'failed' | 'evicted';
  readonly bytes?: number;
  readonly durationMs?: number;
  readonly error?: string;
}

export type BootEvent =
  | AdminActionEvent
  | HostWaitEvent
  | ImageFetchEvent
  | RemoteHostChangeEvent
  | DhcpMessageEvent
  | TransferStartedEvent
  | TransferFinishedEvent
  | HostPhaseEvent
  | SshUpEvent
  | SmokeStartedEvent
  | SmokeFinishedEvent
  | InventoryEvent
  | ImageBuildEvent
  | HostsReloadEvent
  | ServerStateEvent;

export type BootEventType = BootEvent['type'];

/** What the bus adds to each event it delivers: its number in publish order and the wall time it was published. */
export interface Stamp {
  readonly seq: number;
  readonly at: number;
}

/**
 * What a publisher needs, owned here so that servers depend on this one
 * method and not on the bus: publishing never waits and never throws.
 */
export interface EventSink {
  publish(e: BootEvent): void;
}

/** For servers built without a bus (unit tests, the DHCP warm-up). */
export const NO_EVENTS: EventSink = { publish: () => {} };
