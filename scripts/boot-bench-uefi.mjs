#!/usr/bin/env node
// boot-bench-uefi.mjs: the boot bench for what ../shared/bench/boot-bench.sh
// cannot drive (it has no Secure Boot, no shim/GRUB and no UEFI HTTP Boot):
// bootd and dnsmasq serving the same chain to the same OVMF VM, one boot at a
// time, alternating servers (ABBA), median seconds from QEMU's start to bee's
// BOOTD-UP marker, and the ratio bootd/dnsmasq (below 1: bootd faster).
//
//   sudo node scripts/boot-bench-uefi.mjs                 # modes sb http pxe, RUNS=3
//   MODES="sb" RUNS=5 sudo node scripts/boot-bench-uefi.mjs
//
// Modes (the lab's numbers in docs/lab.md):
//   sb    lab mode 6: OVMF with Secure Boot enforced, PXE, shim, Debian's signed GRUB, signed kernel (TFTP)
//   http  lab mode 7: OVMF UEFI HTTP Boot alone (PXE off), snponly.efi by URL, iPXE script, kernel over HTTP
//   pxe   lab mode 5: the same firmware's PXE path: snponly.efi over TFTP, then the same iPXE script
//   arm64 lab mode 9: QEMU virt with AAVMF (TCG), PXE, shimaa64, signed GRUB, the arm64 bee (TFTP)
// http against pxe is HTTP Boot against PXE on the same firmware.
//
// dnsmasq is configured as an operator would for the same chain: dhcp-boot
// shimx64.efi for arch 7 (its TFTP serves shim, grubx64.efi and a static
// grub/grub.cfg), and for HTTP Boot the vendor class set by hand
// (dhcp-vendorclass HTTPClient, dhcp-option-force 60 HTTPClient, an http://
// boot file); iPXE gets the same script from busybox httpd. Both see the same
// image (images/bee/current: the lab's bee), the same kernel arguments, IPv6
// router advertisements (iPXE's 13 s SLAAC wait) and TCG/KVM as the lab
// probes. Everything runs in the lab's own namespace (src/lab/network.ts):
// a bridge and a tap, nothing else.
import { spawn } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { LabNetwork } = await import(path.join(REPO, 'dist/lab/network.js'));
const { prepareFirmwareFile, probeAccel, qemuArgs, qemuFor } = await import(path.join(REPO, 'dist/lab/qemu.js'));
const { placeBootLoaders } = await import(path.join(REPO, 'dist/bootconfig/bootloaders.js'));
const { UP_MARKER } = await import(path.join(REPO, 'dist/lab/timeline.js'));

const RUNS = Number(process.env.RUNS ?? 3);
const MODES = (process.env.MODES ?? 'sb http pxe').split(/\s+/).filter(Boolean);
const TIMEOUT_MS = Number(process.env.TIMEOUT ?? 300) * 1000;
const MAC = '52:54:00:b0:07:01';
const SPEC = {
  sb: { secureBoot: true, netBoot: 'pxe', loader: 'grub' },
  http: { secureBoot: false, netBoot: 'http', loader: 'ipxe' },
  pxe: { secureBoot: false, netBoot: 'pxe', loader: 'ipxe' },
  arm64: { secureBoot: false, netBoot: 'pxe', loader: 'grub', arch: 'arm64' },
};

if (process.getuid?.() !== 0) {
  console.error('boot-bench-uefi: needs root (network namespaces and taps)');
  process.exit(1);
}
for (const m of MODES) if (!SPEC[m]) throw new Error(`unknown mode ${m} (sb, http, pxe, arm64)`);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A child process we started, ended by PID at the end. */
function start(argv, log) {
  const out = log ? fs.open(log, 'w') : null;
  const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  out?.then((fh) => {
    child.stdout.on('data', (d) => fh.write(d).catch(() => {}));
    child.stderr.on('data', (d) => fh.write(d).catch(() => {}));
    child.on('exit', () => fh.close().catch(() => {}));
  });
  if (!out) {
    child.stdout.resume();
    child.stderr.resume();
  }
  return child;
}

async function stop(child) {
  if (!child || child.exitCode !== null) return;
  const gone = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  if (!(await Promise.race([gone.then(() => true), sleep(5000).then(() => false)]))) {
    child.kill('SIGKILL');
    await gone;
  }
}

async function waitFor(pred, ms, what) {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await pred()) return;
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function imageOf(arch) {
  const dir = path.join(REPO, 'images/bee', arch === 'arm64' ? 'current-arm64' : 'current');
  if (!existsSync(path.join(dir, 'manifest.json'))) throw new Error(`no ${dir}: run \`bootd lab --mode ${arch === 'arm64' ? 9 : 6} --once\` first (it builds bee)`);
  const m = JSON.parse(await fs.readFile(path.join(dir, 'manifest.json'), 'utf8'));
  return { dir, version: m.version, kernel: m.kernel, initrd: m.initrds[0], cmdline: m.cmdline ?? [] };
}
const images = { amd64: await imageOf('amd64'), ...(MODES.includes('arm64') ? { arm64: await imageOf('arm64') } : {}) };
const image = images.amd64;
const consoleOf = (arch) => (arch === 'arm64' ? 'ttyAMA0' : 'ttyS0');

/** The static tree an operator would give dnsmasq: loaders, the image, GRUB's config, the iPXE script. */
async function dnsmasqRoot(root, ip, arch) {
  const image = images[arch];
  const placed = await placeBootLoaders(root);
  if (placed.missing.length > 0) throw new Error(`boot loaders missing: ${placed.missing.map((m) => m.pkg).join(', ')} (scripts/setup.sh)`);
  await fs.copyFile(path.join(image.dir, image.kernel), path.join(root, 'vmlinuz'));
  await fs.copyFile(path.join(image.dir, image.initrd), path.join(root, 'initrd.img'));
  const args = [...image.cmdline, `console=${consoleOf(arch)},115200`, `BOOTIF=01-${MAC.replace(/:/g, '-')}`, `bootd.server=${ip}`].join(' ');
  await fs.mkdir(path.join(root, 'grub'), { recursive: true });
  await fs.writeFile(path.join(root, 'grub/grub.cfg'), `set timeout=0\nmenuentry bee {\n  linux (tftp,${ip})/vmlinuz ${args}\n  initrd (tftp,${ip})/initrd.img\n}\n`);
  await fs.writeFile(path.join(root, 'boot.ipxe'), `#!ipxe\nkernel http://${ip}/vmlinuz initrd=initrd.img ${args}\ninitrd http://${ip}/initrd.img\nboot\n`);
}

function dnsmasqArgv(net, mode, root, ip) {
  const [lo, hi] = net.range;
  const a = [
    'dnsmasq', '--no-daemon', '--conf-file=/dev/null', '--port=0', '--user=root', '--pid-file=', `--interface=${net.bridge}`, '--bind-interfaces',
    `--dhcp-range=${lo},${hi},1h`, '--enable-tftp', `--tftp-root=${root}`, '--log-facility=-',
    '--enable-ra', `--dhcp-range=${net.addressing.ula}::,ra-only,64,1h`,
    '--dhcp-userclass=set:ipxe,iPXE', `--dhcp-boot=tag:ipxe,http://${ip}/boot.ipxe`, '--dhcp-option-force=tag:ipxe,encap:175,176,1b',
    '--dhcp-match=set:efi64,option:client-arch,7',
    '--dhcp-match=set:arm64,option:client-arch,11',
  ];
  if (mode === 'arm64') a.push('--dhcp-boot=tag:arm64,shimaa64.efi');
  if (mode === 'sb') a.push('--dhcp-boot=tag:efi64,tag:!ipxe,shimx64.efi');
  if (mode === 'pxe') a.push('--dhcp-boot=tag:efi64,tag:!ipxe,snponly.efi');
  // UEFI HTTP Boot by hand: match the vendor class, echo 60, an http:// boot file
  if (mode === 'http') a.push('--dhcp-vendorclass=set:http,HTTPClient', '--dhcp-option-force=tag:http,60,HTTPClient', `--dhcp-boot=tag:http,tag:!ipxe,http://${ip}/snponly.efi`);
  return a;
}

async function bootdSetup(run, mode) {
  const hosts = path.join(run, 'hosts');
  await fs.mkdir(hosts, { recursive: true });
  const s = SPEC[mode];
  await fs.writeFile(path.join(hosts, 'vm1.yaml'), `mac: ${MAC}\nimage: bee\nloader: ${s.loader}\n${s.secureBoot ? 'secure_boot: true\n' : ''}`);
  await placeBootLoaders(path.join(run, 'tftp'));
  return hosts;
}

function bootdArgv(net, run, hosts, arch) {
  const [lo, hi] = net.range;
  return [
    process.execPath, path.join(REPO, 'dist/cli/main.js'), 'serve', '--interface', net.bridge, '--listen', net.serverIp, '--dhcp-range', `${lo}-${hi}`,
    '--hosts', hosts, '--images', path.join(REPO, 'images'), '--state', path.join(run, 'state'), '--tftp-root', path.join(run, 'tftp'),
    '--http-port', '80', '--kernel-args', `console=${consoleOf(arch)},115200`, '--dhcp-probe-ms', '300', '--no-smoke', '--log-format', 'json', '--admin-listen', 'off',
  ];
}

/** One boot: a fresh namespace, the server, the VM; seconds from QEMU's start to the marker. */
async function bootOnce(server, mode, accel, n) {
  const run = await fs.mkdtemp(path.join(os.tmpdir(), `bootd-bbu-${server}-${mode}-`));
  const net = await LabNetwork.create(1);
  const kids = [];
  try {
    const ip = net.serverIp;
    if (server === 'dnsmasq') {
      const root = path.join(run, 'tftp');
      await dnsmasqRoot(root, ip, SPEC[mode].arch ?? 'amd64');
      kids.push(start(net.exec(dnsmasqArgv(net, mode, root, ip)), path.join(run, 'dnsmasq.log')));
      kids.push(start(net.exec(['busybox', 'httpd', '-f', '-p', `${ip}:80`, '-h', root]), path.join(run, 'httpd.log')));
      await sleep(500);
    } else {
      const hosts = await bootdSetup(run, mode);
      // router advertisements are the network's business, as in the lab
      kids.push(start(net.exec(['dnsmasq', '--no-daemon', '--conf-file=/dev/null', '--port=0', '--user=root', '--pid-file=', `--interface=${net.bridge}`, '--bind-interfaces', '--enable-ra', `--dhcp-range=${net.addressing.ula}::,ra-only,64,1h`, '--log-facility=-'])));
      const log = path.join(run, 'bootd.log');
      kids.push(start(net.exec(bootdArgv(net, run, hosts, SPEC[mode].arch ?? 'amd64')), log));
      await waitFor(async () => (await fs.readFile(log, 'utf8').catch(() => '')).includes('"msg":"dhcp listening"'), 20_000, 'bootd to listen');
    }
    const s = SPEC[mode];
    const serialLog = path.join(run, 'vm1.serial.log');
    const firmwareFile = path.join(run, 'vm1.vars.fd');
    await prepareFirmwareFile({ firmware: 'uefi', firmwareFile, secureBoot: s.secureBoot, arch: s.arch ?? 'amd64' });
    await fs.writeFile(serialLog, '');
    const argv = net.exec([qemuFor(s.arch), ...qemuArgs({ name: 'vm1', mac: MAC, uuid: 'b0070000-0000-4000-8000-525400b00701', tap: net.taps[0], firmware: 'uefi', rom: 'none', memoryMiB: 1024, accel, serialLog, firmwareFile, secureBoot: s.secureBoot, netBoot: s.netBoot, arch: s.arch ?? 'amd64' })]);
    const t0 = performance.now();
    kids.push(start(argv));
    await waitFor(async () => UP_MARKER.test(await fs.readFile(serialLog, 'latin1')), TIMEOUT_MS, `${server} ${mode} boot ${n}: the BOOTD-UP marker (serial log ${serialLog})`);
    const secs = (performance.now() - t0) / 1000;
    await fs.rm(run, { recursive: true, force: true });
    return secs;
  } finally {
    for (const k of kids.reverse()) await stop(k);
    await net.destroy();
  }
}

const median = (xs) => {
  const a = [...xs].sort((x, y) => x - y);
  return a.length === 0 ? NaN : a.length % 2 ? a[(a.length - 1) / 2] : (a[a.length / 2 - 1] + a[a.length / 2]) / 2;
};

const probeDir = await fs.mkdtemp(path.join(os.tmpdir(), 'bootd-bbu-probe-'));
const { accel, reason } = await probeAccel(probeDir, 'auto');
await fs.rm(probeDir, { recursive: true, force: true });
console.log(`boot-bench-uefi: bee ${image.version}, ${accel} (${reason}), RUNS=${RUNS}, modes ${MODES.join(' ')}`);
const results = {};
for (const mode of MODES) {
  results[mode] = { dnsmasq: [], bootd: [] };
  for (let r = 0; r < RUNS; r++) {
    const order = r % 2 === 0 ? ['dnsmasq', 'bootd'] : ['bootd', 'dnsmasq'];
    for (const server of order) {
      const secs = await bootOnce(server, mode, accel, r + 1);
      results[mode][server].push(secs);
      console.log(`  ${mode} ${server} run ${r + 1}: BOOTD-UP after ${secs.toFixed(2)} s`);
    }
  }
}
console.log(`\n${'mode'.padEnd(6)}${'dnsmasq'.padStart(10)}${'bootd'.padStart(10)}${'ratio'.padStart(8)}   (median s, QEMU start to BOOTD-UP)`);
for (const mode of MODES) {
  const d = median(results[mode].dnsmasq);
  const b = median(results[mode].bootd);
  console.log(`${mode.padEnd(6)}${d.toFixed(2).padStart(10)}${b.toFixed(2).padStart(10)}${(b / d).toFixed(2).padStart(8)}   [dnsmasq ${results[mode].dnsmasq.map((x) => x.toFixed(1)).join(' ')}; bootd ${results[mode].bootd.map((x) => x.toFixed(1)).join(' ')}]`);
}
if (results.http && results.pxe) console.log(`HTTP Boot against PXE on the same firmware: bootd x${(median(results.http.bootd) / median(results.pxe.bootd)).toFixed(2)}, dnsmasq x${(median(results.http.dnsmasq) / median(results.pxe.dnsmasq)).toFixed(2)}`);
