/**
 * The exposition: names, labels and values from the stats registry and the
 * events, and Debian's promtool's verdict on it (`promtool check metrics`).
 */
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { BootdMetrics } from '../../src/admin/metrics.js';
import type { BootEvent } from '../../src/events/types.js';
import { Histogram, REPLY_BOUNDS } from '../../src/stats/histogram.js';
import { StatsRegistry } from '../../src/stats/registry.js';

function setup() {
  const stats = new StatsRegistry();
  const dhcp = { received: 10, discovers: 4, requests: 5, declines: 1, releases: 0, informs: 0, offers: 4, acks: 4, naks: 1, malformed: 2, ignored: 3, poolExhausted: 1, replyTooBig: 0, storeFailures: 0, foreignDeclines: 0, foreignReleases: 0, unknownInitReboot: 0, badClientValues: 0, unicastReplies: 0, standby: 0 };
  const tftp = { requests: 7, notFound: 2, denied: 1, refusedWrite: 0, refusedBusy: 1, refusedClientBusy: 0, rateLimited: 0, bytesSent: 12345, bytesReceived: 0, active: 1, completed: 3, retransmits: 5 };
  stats.register('dhcp', () => dhcp);
  stats.register('tftp', () => tftp, ['active']);
  const latency = new Histogram(REPLY_BOUNDS);
  latency.observe(0.0003);
  latency.observe(0.002);
  const m = new BootdMetrics({
    stats: () => stats.read(),
    dhcpReplyLatency: latency,
    subnets: () => [{ subnet: '198.18.0.0/24', total: 100, assigned: 3, declined: 1 }],
    hostsByPhase: () => ({ up: 2, none: 1 }),
    version: '9.9.9',
  });
  let seq = 0;
  const send = (e: BootEvent, at: number): void => m.onEvent(e, { seq: ++seq, at });
  return { m, send, dhcp, stats };
}

const value = (text: string, series: string): number | undefined => {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
};

describe('bootd /metrics', () => {
  it('exports the servers\' counters under Kea-style names and labels, read live', async () => {
    const { m, dhcp } = setup();
    let t = await m.exposition();
    expect(value(t, 'bootd_dhcp4_packets_received_total{operation="discover"}')).toBe(4);
    expect(value(t, 'bootd_dhcp4_packets_received_total{operation="request"}')).toBe(5);
    expect(value(t, 'bootd_dhcp4_packets_sent_total{operation="ack"}')).toBe(4);
    expect(value(t, 'bootd_dhcp4_packets_sent_total{operation="nak"}')).toBe(1);
    expect(value(t, 'bootd_dhcp4_packets_parse_failed_total')).toBe(2);
    expect(value(t, 'bootd_dhcp4_allocation_failures_total{reason="pool-exhausted"}')).toBe(1);
    expect(value(t, 'bootd_dhcp4_addresses_assigned{subnet="198.18.0.0/24"}')).toBe(3);
    expect(value(t, 'bootd_dhcp4_addresses_pool{subnet="198.18.0.0/24"}')).toBe(100);
    expect(value(t, 'bootd_dhcp4_addresses_declined{subnet="198.18.0.0/24"}')).toBe(1);
    expect(value(t, 'bootd_dhcp4_reply_duration_seconds_count')).toBe(2);
    expect(value(t, 'bootd_dhcp4_reply_duration_seconds_bucket{le="0.0005"}')).toBe(1);
    expect(value(t, 'bootd_dhcp4_reply_duration_seconds_bucket{le="+Inf"}')).toBe(2);
    expect(value(t, 'bootd_transfer_refusals_total{protocol="tftp",reason="not-found"}')).toBe(2);
    expect(value(t, 'bootd_transfer_refusals_total{protocol="tftp",reason="access"}')).toBe(1);
    expect(value(t, 'bootd_transfer_refusals_total{protocol="tftp",reason="busy"}')).toBe(1);
    expect(value(t, 'bootd_transfers_active{protocol="tftp"}')).toBe(1);
    expect(value(t, 'bootd_transfer_bytes_total{protocol="tftp",direction="read"}')).toBe(12345);
    expect(value(t, 'bootd_hosts_by_phase{phase="up"}')).toBe(2);
    expect(value(t, 'bootd_build_info{version="9.9.9"}')).toBe(1);
    // a counter no named metric takes is still there, by its registry name
    expect(value(t, 'bootd_tftp_retransmits_total')).toBe(5);
    expect(t).toMatch(/^bootd_process_cpu_seconds_total /m);
    dhcp.acks = 40;
    t = await m.exposition();
    expect(value(t, 'bootd_dhcp4_packets_sent_total{operation="ack"}')).toBe(40);
  });

  it('counts transfers, boots and their phases, smoke tests, reports, reloads and builds from events', async () => {
    const { m, send } = setup();
    send({ type: 'transfer.finished', protocol: 'tftp', direction: 'read', peer: 'x', file: 'pxelinux.0', bytes: 1000, durationMs: 20, outcome: 'complete' }, 0);
    send({ type: 'transfer.finished', protocol: 'http', direction: 'read', peer: 'x', file: 'nope', bytes: 0, durationMs: 1, outcome: 'refused', http: { method: 'GET', status: 404 } }, 0);
    const t0 = 1_000_000;
    send({ type: 'host.phase', host: 'h1', boot: 'b1', phase: 'dhcp', ip: null, image: 'bee@2026.1' }, t0);
    send({ type: 'host.phase', host: 'h1', boot: 'b1', phase: 'kernel', ip: null, image: 'bee@2026.1' }, t0 + 4000);
    send({ type: 'host.phase', host: 'h1', boot: 'b1', phase: 'os-dhcp', ip: '198.18.0.9', image: 'bee@2026.1' }, t0 + 9000);
    send({ type: 'host.phase', host: 'h1', boot: 'b1', phase: 'up', ip: '198.18.0.9', image: 'bee@2026.1' }, t0 + 15000);
    send({ type: 'host.phase', host: 'h1', boot: 'b1', phase: 'smoke-passed', ip: '198.18.0.9', image: 'bee@2026.1' }, t0 + 40000);
    send({ type: 'smoke.finished', host: 'h1', boot: 'b1', ok: true, passed: 9, failed: 0, durationMs: 2500 }, t0 + 40000);
    send({ type: 'inventory.stored', host: 'h1', bytes: 100 }, t0);
    send({ type: 'inventory.rejected', host: 'h1', bytes: 100, error: 'bad' }, t0);
    send({ type: 'hosts.reload', ok: false, hosts: 5, issues: ['a.yaml:1:1: x'], filesInError: 1 }, t0);
    send({ type: 'image.build', image: 'bee', state: 'started' }, t0);
    let t = await m.exposition();
    expect(value(t, 'bootd_image_builds_running')).toBe(1);
    send({ type: 'image.build', image: 'bee', state: 'finished', version: '2026.2', durationMs: 95_000 }, t0);
    t = await m.exposition();
    expect(value(t, 'bootd_transfers_total{protocol="tftp",outcome="complete"}')).toBe(1);
    expect(value(t, 'bootd_transfer_duration_seconds_count{protocol="tftp"}')).toBe(1);
    expect(value(t, 'bootd_transfer_refusals_total{protocol="http",reason="not-found"}')).toBe(1);
    expect(value(t, 'bootd_boots_total{image="bee",result="dhcp"}')).toBe(1);
    expect(value(t, 'bootd_boots_total{image="bee",result="smoke-passed"}')).toBe(1);
    expect(value(t, 'bootd_boot_phase_seconds_bucket{le="5",step="kernel"}')).toBe(1);
    expect(value(t, 'bootd_boot_phase_seconds_sum{step="userland"}')).toBe(9);
    expect(value(t, 'bootd_boot_phase_seconds_sum{step="ssh"}')).toBe(15);
    expect(value(t, 'bootd_boot_phase_seconds_sum{step="smoke"}')).toBe(40);
    expect(value(t, 'bootd_smoke_tests_total{result="passed"}')).toBe(1);
    expect(value(t, 'bootd_inventory_reports_total{result="rejected"}')).toBe(1);
    expect(value(t, 'bootd_hosts_reloads_total{result="error"}')).toBe(1);
    expect(value(t, 'bootd_hosts_files_in_error')).toBe(1);
    expect(value(t, 'bootd_image_builds_total{image="bee",result="finished"}')).toBe(1);
    expect(value(t, 'bootd_image_build_duration_seconds_sum{image="bee"}')).toBe(95);
    expect(value(t, 'bootd_image_builds_running')).toBe(0);
  });

  it('passes promtool check metrics (Debian\'s prometheus package)', async () => {
    const { m, send } = setup();
    send({ type: 'host.phase', host: 'h1', boot: 'b1', phase: 'dhcp', ip: null, image: 'bee@1' }, 0);
    send({ type: 'transfer.finished', protocol: 'tftp', direction: 'read', peer: 'x', file: 'f', bytes: 1, durationMs: 1, outcome: 'complete' }, 0);
    const r = await execa('promtool', ['check', 'metrics'], { input: await m.exposition(), reject: false });
    expect(r.exitCode, `${r.stdout}\n${r.stderr}`).toBe(0);
  });
});
