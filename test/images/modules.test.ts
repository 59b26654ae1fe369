import { describe, expect, it } from 'vitest';
import { modulePatternMatcher, parseModulesDep, selectModules } from '../../src/images/modules.js';

// modules.dep as depmod writes it: bookworm's plain .ko and trixie's .ko.xz side by side.
const DEP = [
  'kernel/drivers/virtio/virtio.ko:',
  'kernel/drivers/virtio/virtio_ring.ko:',
  'kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko',
  'kernel/drivers/virtio/virtio_pci_modern_dev.ko:',
  'kernel/drivers/net/virtio_net.ko.xz: kernel/net/core/failover.ko.zst kernel/drivers/net/net_failover.ko.xz',
  'kernel/drivers/net/net_failover.ko.xz: kernel/net/core/failover.ko.zst',
  'kernel/net/core/failover.ko.zst:',
  'kernel/drivers/net/ethernet/intel/e1000/e1000.ko.gz:',
  'kernel/drivers/net/ethernet/intel/igb/igb.ko: kernel/drivers/i2c/algos/i2c-algo-bit.ko',
  'kernel/drivers/i2c/algos/i2c-algo-bit.ko:',
  '',
].join('\n');

describe('kernel module selection', () => {
  const deps = parseModulesDep(DEP);

  it('parses every module line, compressed or not', () => {
    expect(deps.size).toBe(10);
    expect(deps.get('kernel/drivers/net/virtio_net.ko.xz')).toEqual(['kernel/net/core/failover.ko.zst', 'kernel/drivers/net/net_failover.ko.xz']);
  });

  it('a pattern names the module without its suffix and brings its dependencies', () => {
    const s = selectModules(deps, ['drivers/net/virtio_net']);
    expect(s.modules).toEqual(['kernel/drivers/net/net_failover.ko.xz', 'kernel/drivers/net/virtio_net.ko.xz', 'kernel/net/core/failover.ko.zst']);
    expect(s.unmatched).toEqual([]);
  });

  it('* stays in one folder, ** descends', () => {
    expect(selectModules(deps, ['drivers/virtio/*']).modules).toHaveLength(4);
    expect(selectModules(deps, ['drivers/net/*']).modules).toEqual(['kernel/drivers/net/net_failover.ko.xz', 'kernel/drivers/net/virtio_net.ko.xz', 'kernel/net/core/failover.ko.zst']);
    expect(selectModules(deps, ['drivers/net/ethernet/**']).modules).toEqual([
      'kernel/drivers/i2c/algos/i2c-algo-bit.ko',
      'kernel/drivers/net/ethernet/intel/e1000/e1000.ko.gz',
      'kernel/drivers/net/ethernet/intel/igb/igb.ko',
    ]);
  });

  it('reports patterns that match nothing (a driver this flavour lacks) instead of failing', () => {
    const s = selectModules(deps, ['drivers/net/virtio_net', 'drivers/net/ethernet/realtek/**']);
    expect(s.unmatched).toEqual(['drivers/net/ethernet/realtek/**']);
    expect(s.modules.length).toBe(3);
  });

  it('does not match a longer name or a regex look-alike', () => {
    const m = modulePatternMatcher('drivers/virtio/virtio');
    expect(m('kernel/drivers/virtio/virtio.ko')).toBe(true);
    expect(m('kernel/drivers/virtio/virtio_ring.ko')).toBe(false);
    expect(modulePatternMatcher('drivers/i2c/algos/i2c-algo-bit')('kernel/drivers/i2c/algos/i2c-algo-bitXko')).toBe(false);
    expect(modulePatternMatcher('drivers/net/virtio_net.ko')('kernel/drivers/net/virtio_net.ko.xz')).toBe(true);
  });
});
