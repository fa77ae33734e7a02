import type { Command } from '../command.js';
import { buildCommand } from './build.js';
import { debugCommand } from './debug.js';
import { doctorCommand } from './doctor.js';
import { imagesCommand } from './images.js';
import { inspectCommand } from './inspect.js';
import { loginCommand } from './login.js';
import { logoutCommand } from './logout.js';
import { pruneCommand } from './prune.js';
import { pullCommand } from './pull.js';
import { pushCommand } from './push.js';
import { rmiCommand } from './rmi.js';
import { storeCommand } from './store.js';
import { tagCommand } from './tag.js';

/**
 * Every top-level command, in help order. Each lives in its own file in this
 * folder; add yours with one import and one entry.
 */
export const COMMANDS: Command[] = [buildCommand, debugCommand, pullCommand, pushCommand, imagesCommand, tagCommand, rmiCommand, inspectCommand, pruneCommand, storeCommand, loginCommand, logoutCommand, doctorCommand];
