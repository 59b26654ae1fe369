/**
 * The `bootd` command line. Each subcommand parses its flags into typed
 * configuration and hands over to the composition root in ../app.ts.
 */
import { Command } from 'commander';
import { BOOTD_VERSION } from '../app.js';
import { BOOT_LOADERS, placeBootLoaders } from '../bootconfig/bootloaders.js';
import { addImageBuildCommand } from './images.js';
import { addHostCommands } from './hosts.js';
import { addLabCommand } from './lab.js';
import { addLeaseCommands } from './leases.js';
import { addDbCommands } from './db.js';
import { addServeCommand } from './serve.js';
import { addStateCommands } from './state.js';

const program = new Command('bootd').description('Network-boot appliance: DHCP and TFTP in one process').version(BOOTD_VERSION);

addServeCommand(program);
addImageBuildCommand(addHostCommands(program));
addLabCommand(program);
addStateCommands(program);
addLeaseCommands(program);
addDbCommands(program);

program
  .command('setup')
  .description('place the boot loaders from Debian packages (pxelinux, syslinux-efi, syslinux-common, ipxe) into the TFTP root')
  .option('--tftp-root <dir>', 'TFTP root to fill', '/var/lib/bootd/tftp')
  .action(async (o: { tftpRoot: string }) => {
    const r = await placeBootLoaders(o.tftpRoot);
    for (const f of r.placed) process.stdout.write(`placed    ${f}\n`);
    for (const f of r.unchanged) process.stdout.write(`unchanged ${f}\n`);
    for (const m of r.missing) process.stderr.write(`missing   ${m.name}: ${m.source} (package ${m.pkg}; bash scripts/setup.sh installs or unpacks it)\n`);
    process.stdout.write(`${r.placed.length + r.unchanged.length} of ${BOOT_LOADERS.length} boot loaders in ${o.tftpRoot}\n`);
    process.exitCode = r.missing.length === 0 ? 0 : 1;
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  console.error(`bootd: ${(err as Error).message}`);
  process.exit(1);
});
