import type { Command } from '../command';
import { CLIENTS } from './clients';
import { DOCTOR } from './doctor';
import { INVESTIGATE } from './investigate';
import { KEYS } from './keys';
import { LOCKDOWN } from './lockdown';
import { QUARANTINE } from './quarantine';
import { SECRETS_COMMAND } from './secrets';
import { REVOKE_SESSIONS } from './sessions';

/**
 * Every command, in the order `--help` lists them. A new command is a module in this folder that
 * exports a `Command`, a row here, and a test file in cli/test/commands/.
 */
export const COMMANDS: readonly Command[] = [
  KEYS,
  CLIENTS,
  SECRETS_COMMAND,
  REVOKE_SESSIONS,
  DOCTOR,
  LOCKDOWN,
  QUARANTINE,
  INVESTIGATE,
];
