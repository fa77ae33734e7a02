import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** runtime/ at the package root (dist/src/sandbox → ../../../runtime, src/sandbox → ../../runtime). */
export function runtimeDir(): string {
  const here = fileURLToPath(new URL('.', import.meta.url));
  return here.includes('/dist/') ? fileURLToPath(new URL('../../../runtime/', import.meta.url)) : fileURLToPath(new URL('../../runtime/', import.meta.url));
}

export function readRuntimeFile(name: string): string {
  return readFileSync(runtimeDir() + name, 'utf8');
}

/** /etc/hosts for a RUN step, from runtime/hosts ({{hostname}} substituted). */
export function hostsFile(hostname: string): Buffer {
  return Buffer.from(readRuntimeFile('hosts').replaceAll('{{hostname}}', hostname));
}

/**
 * /etc/resolv.conf for a RUN step: the host's nameserver/search/options lines
 * (as docker build does with host networking), or runtime/resolv.conf when
 * the host has none.
 */
export function resolvConfFile(hostPath = '/etc/resolv.conf'): Buffer {
  let host = '';
  try {
    host = readFileSync(hostPath, 'utf8');
  } catch {
    // no host file
  }
  const lines = host.split('\n').filter((l) => /^\s*(nameserver|search|domain|options)\s/.test(l));
  if (!lines.some((l) => /^\s*nameserver\s/.test(l))) return Buffer.from(readRuntimeFile('resolv.conf'));
  return Buffer.from(lines.join('\n') + '\n');
}
