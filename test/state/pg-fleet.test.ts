/**
 * Instances sharing one database (a cluster of the test's own): a host
 * record one instance writes reaches the other's memory by LISTEN/NOTIFY
 * within a second, also after the listener's connection was cut (it
 * reconnects and reads what it missed); the instance registry shows every
 * instance with its host-set digest, and whether they agree.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HostRecord } from '../../src/afterboot/record.js';
import { systemClock } from '../../src/net/clock.js';
import { PgHostRecords } from '../../src/state/pg/host-records.js';
import { InstanceRegistry, hostSetAgreement } from '../../src/state/pg/instances.js';
import { postgresUnavailable, startCluster, type TestCluster } from '../helpers/postgres.js';
import { until } from '../helpers/workdir.js';

const skip = postgresUnavailable();
if (skip) console.warn(`SKIPPED PostgreSQL fleet tests: ${skip}`);

const rec = (name: string, phase: string): HostRecord => ({ name, boots: [{ id: `${name}-1`, startedAt: '2026-12-02T10:00:00.000Z', phase, events: [{ at: '2026-12-02T10:00:00.000Z', kind: 'dhcp', text: 'ack' }] }] }) as unknown as HostRecord;

describe.skipIf(skip !== null)('instances sharing a database', () => {
  let cluster: TestCluster;
  beforeAll(async () => {
    cluster = await startCluster();
  }, 120_000);
  afterAll(async () => {
    await cluster?.stop();
  });

  it('a record written by one instance is in the other\'s memory within a second, and after a lost listener too', async () => {
    const url = await cluster.createDb('records');
    const seen: { hosts: readonly string[]; from: string; ms: number }[] = [];
    let t0 = 0;
    const a = await PgHostRecords.open(url, { instance: 'rack-a', clock: systemClock });
    const b = await PgHostRecords.open(url, { instance: 'rack-b', clock: systemClock, onRemote: (hosts, from) => seen.push({ hosts, from, ms: Date.now() - t0 }) });
    try {
      t0 = Date.now();
      await a.put(rec('web-1', 'kernel'), true);
      await until(() => seen.length > 0, 1000, 'the notification at b');
      expect(seen[0]).toMatchObject({ hosts: ['web-1'], from: 'rack-a' });
      expect((await b.get('web-1'))?.boots[0]).toMatchObject({ phase: 'kernel' });
      console.log(`a record written by rack-a was in rack-b's memory ${seen[0]?.ms} ms later`);
      // a storm of gathered (non-durable) puts: one write, every host told
      for (let i = 0; i < 200; i++) void a.put(rec(`n-${i}`, 'dhcp'), false);
      await until(async () => (await b.list({ limit: 1000 })).total === 201, 2000, 'b to know all 201 hosts');
      // b does not hear its own writes back
      seen.length = 0;
      await b.put(rec('web-2', 'up'), true);
      await until(async () => (await a.get('web-2')) !== undefined, 1000, 'a to see web-2');
      expect(seen).toEqual([]);
      // cut b's listening connection: it reconnects within a few seconds and reads what it missed
      await cluster.psql('records', "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'bootd rack-b listen'");
      await a.put(rec('web-1', 'up'), true);
      await until(async () => (await b.get('web-1'))?.boots[0]?.phase === 'up', 5000, 'b to catch up after relistening');
      expect(b.counters.listenerLost).toBe(1);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('the registry lists every instance with its host-set digest, and says when they disagree', async () => {
    const url = await cluster.createDb('registry');
    let digestB = 'aaaa';
    const a = await InstanceRegistry.open(url, { id: 'rack-a', hostname: 'a', segment: '198.18.0.0/24', serverIp: '198.18.0.1', version: 'x' }, () => ({ hostsDigest: 'aaaa', hostsCount: 3, leading: true }), systemClock, 200);
    const b = await InstanceRegistry.open(url, { id: 'rack-b', hostname: 'b', segment: '198.18.1.0/24', serverIp: '198.18.1.1', version: 'x' }, () => ({ hostsDigest: digestB, hostsCount: 3, leading: false }), systemClock, 200);
    try {
      const rows = await a.list();
      expect(rows.map((r) => [r.id, r.segment, r.serverIp, r.leading, r.alive])).toEqual([
        ['rack-a', '198.18.0.0/24', '198.18.0.1', true, true],
        ['rack-b', '198.18.1.0/24', '198.18.1.1', false, true],
      ]);
      expect(hostSetAgreement(rows).agree).toBe(true);
      digestB = 'bbbb';
      await b.changed();
      const now = hostSetAgreement(await a.list());
      expect(now.agree).toBe(false);
      expect(now.groups.map((g) => [g.digest, g.instances])).toEqual([['aaaa', ['rack-a']], ['bbbb', ['rack-b']]]);
      // an instance that stops beating is no longer alive, and no longer counted
      await b.close();
      expect((await a.list()).map((r) => r.id)).toEqual(['rack-a']);
    } finally {
      await a.close();
      await b.close();
    }
  });
});
