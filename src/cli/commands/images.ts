import { parseManifestDocument } from '../../image/index.js';
import { familiarString } from '../../oci/reference.js';
import { formatPlatform } from '../../oci/platform.js';
import { type Command, flagBool } from '../command.js';
import { humanSize, storeFor } from './registry-options.js';

export const imagesCommand: Command = {
  name: 'images',
  summary: 'List images in the local store',
  usage: 'images [--json] [--quiet]',
  flags: [
    { name: 'json', type: 'boolean', description: 'Print JSON (one array of objects)' },
    { name: 'quiet', short: 'q', type: 'boolean', description: 'Print only names' },
  ],
  async run(args, io) {
    const store = storeFor(io);
    const rows: Array<{ name: string; digest: string; mediaType: string; platforms: string[]; size: number }> = [];
    for (const { name, descriptor } of await store.listTags()) {
      let size = descriptor.size;
      const platforms: string[] = [];
      try {
        const doc = parseManifestDocument(await store.read(descriptor.digest), descriptor.mediaType);
        if (doc.kind === 'manifest') {
          size += doc.manifest.config.size + doc.manifest.layers.reduce((n, l) => n + l.size, 0);
          const cfg = JSON.parse((await store.read(doc.manifest.config.digest)).toString('utf8'));
          platforms.push(formatPlatform(cfg));
        } else {
          for (const m of doc.index.manifests) if (m.platform && m.platform.os !== 'unknown') platforms.push(formatPlatform(m.platform));
        }
      } catch {
        platforms.push('(incomplete)');
      }
      rows.push({ name, digest: descriptor.digest, mediaType: descriptor.mediaType, platforms, size });
    }
    if (flagBool(args, 'json')) io.stdout.write(JSON.stringify(rows, null, 2) + '\n');
    else if (flagBool(args, 'quiet')) for (const r of rows) io.stdout.write(`${r.name}\n`);
    else {
      const table = [['NAME', 'DIGEST', 'PLATFORMS', 'SIZE'], ...rows.map((r) => [familiarString(r.name), r.digest.slice(7, 19), r.platforms.join(','), humanSize(r.size)])];
      const w = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
      for (const row of table) io.stdout.write(row.map((c, i) => (i === row.length - 1 ? c : c.padEnd(w[i]!))).join('   ') + '\n');
    }
    return 0;
  },
};
