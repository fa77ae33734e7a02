import { verifyStore } from '../../content/index.js';
import { type Command, flagBool } from '../command.js';
import { humanSize, storeFor } from './registry-options.js';

const verify: Command = {
  name: 'verify',
  summary: 'Rehash every blob in the local store; exit 1 on any mismatch',
  usage: 'store verify [--json]',
  flags: [{ name: 'json', type: 'boolean', description: 'Print the report as JSON' }],
  async run(args, io) {
    const store = storeFor(io);
    const report = await verifyStore(store);
    if (flagBool(args, 'json')) io.stdout.write(JSON.stringify({ root: store.root, ...report }, null, 2) + '\n');
    else {
      for (const m of report.mismatches) io.stdout.write(`MISMATCH ${m.digest}: content hashes to ${m.actual} (${m.size} bytes)\n`);
      for (const m of report.missingTagged) io.stdout.write(`MISSING  ${m.digest}: named by "${m.name}" but not in the store\n`);
      io.stdout.write(`Checked ${report.checked} blobs (${humanSize(report.bytes)}) in ${store.root}: ${report.mismatches.length} mismatched, ${report.missingTagged.length} missing\n`);
    }
    return report.mismatches.length || report.missingTagged.length ? 1 : 0;
  },
};

export const storeCommand: Command = {
  name: 'store',
  summary: 'Inspect and maintain the local content store',
  usage: 'store <command>',
  flags: [],
  subcommands: [verify],
};
