/**
 * Build-machine assignments in <state>/machines.json (lowdb over
 * DurableJsonFile: temp file, fsync, rename), as src/machines/ declares
 * them (MachineStore). The memory version is in ./memory.ts.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { Low } from 'lowdb';
import type { Machine, MachineStore } from '../machines/registry.js';
import { DurableJsonFile } from './durable-json-file.js';

interface MachinesDoc {
  version: 1;
  machines: Machine[];
}

const MACHINES_FILE = 'machines.json';

export class FileMachineStore implements MachineStore {
  private constructor(private readonly db: Low<MachinesDoc>) {}

  static async open(stateDir: string): Promise<FileMachineStore> {
    await fs.mkdir(stateDir, { recursive: true });
    const db = new Low<MachinesDoc>(new DurableJsonFile<MachinesDoc>(path.join(stateDir, MACHINES_FILE)), { version: 1, machines: [] });
    await db.read();
    if (!Array.isArray(db.data.machines)) db.data = { version: 1, machines: [] };
    return new FileMachineStore(db);
  }

  /** The assignments in `stateDir` as they are on disk, read only (the CLI, beside a running bootd). */
  static reader(stateDir: string): Pick<MachineStore, 'load'> {
    return {
      load: async () => {
        const d = await new DurableJsonFile<MachinesDoc>(path.join(stateDir, MACHINES_FILE)).read();
        return Array.isArray(d?.machines) ? d.machines : [];
      },
    };
  }

  load(): Promise<Machine[]> {
    return Promise.resolve([...this.db.data.machines]);
  }

  async save(machines: readonly Machine[]): Promise<void> {
    this.db.data = { version: 1, machines: [...machines] };
    await this.db.write();
  }
}
