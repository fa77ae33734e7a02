/**
 * Generated benchmark inputs: context files and registry images, deterministic and (for
 * images) cached with the other fixtures.
 */
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tarStream from 'tar-stream';
import { cachedDir } from '../fixtures/fixture-cache.js';
import { pseudoRandomStream, writeOciLayout, type TarEntrySpec } from '../fixtures/oci-layout-writer.js';

/** `count` small files (50–400 bytes) in 20 dirs d00…d19 under `dir`. */
export async function writeManyFiles(dir: string, count: number): Promise<void> {
  const perDir = Math.ceil(count / 20);
  for (let d = 0; d < 20; d++) {
    const sub = join(dir, `d${String(d).padStart(2, '0')}`);
    await mkdir(sub, { recursive: true });
    const writes: Promise<void>[] = [];
    for (let f = 0; f < perDir && d * perDir + f < count; f++) {
      const n = d * perDir + f;
      const body = `file ${n}\n` + 'x'.repeat(50 + ((n * 7919) % 350)) + '\n';
      writes.push(writeFile(join(sub, `f${String(n).padStart(5, '0')}.txt`), body));
    }
    await Promise.all(writes);
  }
}

function pseudoRandomBuffer(seed: string, size: number): Buffer {
  const out = Buffer.alloc(size);
  let off = 0;
  let i = 0;
  while (off < size) {
    const block = createHash('sha256').update(`${seed}:${i++}`).digest();
    off += block.copy(out, off);
  }
  return out;
}

/**
 * A small image whose /assets holds `files` files of `kb` kB each, half text, half random
 * (for COPY --from a registry image).
 */
export async function ensureAssetsLayout(name: string, files: number, kb: number): Promise<string> {
  const dir = await cachedDir(`bench-${name}`, ['assets-v1', name, String(files), String(kb)], async (tmp) => {
    const entries: TarEntrySpec[] = [{ name: 'assets/', type: 'directory', mode: 0o755 }];
    for (let i = 0; i < files; i++) {
      const size = kb * 1024;
      const content =
        i % 2 === 0
          ? Buffer.from(`${name} asset ${i}\n`.repeat(Math.ceil(size / 16))).subarray(0, size)
          : pseudoRandomBuffer(`${name}/${i}`, size);
      entries.push({ name: `assets/${name}-${String(i).padStart(4, '0')}.bin`, type: 'file', mode: 0o644, content });
    }
    await writeOciLayout(join(tmp, 'oci'), {
      layers: [{ entries }],
      config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'] },
      history: [`bench assets ${name}`],
      gzipLevel: 1,
    });
  });
  return join(dir, 'oci');
}

/** An image of `layers` layers, each one file of `mbPerLayer` MiB of incompressible bytes. */
export async function ensureBulkLayout(layers: number, mbPerLayer: number): Promise<string> {
  const dir = await cachedDir('bench-bulk', ['bulk-v1', String(layers), String(mbPerLayer)], async (tmp) => {
    const layerSources = Array.from({ length: layers }, (_, i) => ({
      tarStream: () => bulkTar(`bulk-${i}`, mbPerLayer * 1024 * 1024),
    }));
    await writeOciLayout(join(tmp, 'oci'), {
      layers: layerSources,
      config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['sh'] },
      history: layerSources.map((_, i) => `bulk layer ${i}`),
      gzipLevel: 1,
    });
  });
  return join(dir, 'oci');
}

/** A one-file tar stream whose body is `size` pseudo-random bytes, streamed (not buffered). */
function bulkTar(name: string, size: number): Readable {
  const pack = tarStream.pack();
  const entry = pack.entry({ name: `bulk/${name}.bin`, size, mode: 0o644, mtime: new Date(0), uid: 0, gid: 0 }, (err) => {
    if (err) pack.destroy(err);
    else pack.finalize();
  });
  pipeline(pseudoRandomStream(name, size), entry).catch((err) => pack.destroy(err));
  return pack as unknown as Readable;
}
