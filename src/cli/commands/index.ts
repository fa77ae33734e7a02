import type { Command } from '../command.js';
import { debugCommand } from './debug.js';

/**
 * Every top-level command, in help order. Each lives in its own file in this
 * folder; add yours with one import and one entry.
 */
export const COMMANDS: Command[] = [debugCommand];
