import { homedir } from 'node:os';
import { join } from 'node:path';

/** kiln's state directory: $KILN_ROOT, else $XDG_DATA_HOME/kiln, else ~/.local/share/kiln. */
export function kilnRoot(env: NodeJS.ProcessEnv = process.env): string {
  if (env.KILN_ROOT) return env.KILN_ROOT;
  const data = env.XDG_DATA_HOME || join(homedir(), '.local', 'share');
  return join(data, 'kiln');
}
